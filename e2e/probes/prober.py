"""HTTP prober for failover measurements: a new connection every INTERVAL, one line per success.

Run inside the client namespace. Prints `<start> <end> <body>` (monotonic seconds) per answered request;
CLOCK_MONOTONIC is system-wide, so the caller can compare with its own kill timestamp.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time


def once(host: str, port: int, timeout: float) -> str | None:
    """One GET on a fresh connection; the body or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((host, port))
            s.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            return data.split(b"\r\n\r\n", 1)[1].decode().strip() if b"\r\n\r\n" in data else None
    except OSError:
        return None


def main() -> None:
    """Probe until DURATION passes."""
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=0.1)
    p.add_argument("--duration", type=float, default=5.0)
    args = p.parse_args()
    end = time.monotonic() + args.duration
    while time.monotonic() < end:
        started = time.monotonic()
        body = once(args.host, args.port, args.timeout)
        if body:
            print(f"{started:.6f} {time.monotonic():.6f} {body}", flush=True)
        time.sleep(args.interval)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
