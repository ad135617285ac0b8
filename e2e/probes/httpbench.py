"""HTTP measurements from inside a lab namespace, for the datapath benchmark.

`latency URL_HOST PORT --requests N`: N sequential GETs, each on a new connection; prints the
round-trip times' p50/p99 in ms. `throughput HOST PORT --bytes N`: one GET of /bytes/N; prints MB/s.
One JSON line either way.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import time


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect((host, port))
    return sock


def get(host: str, port: int, path: str, timeout: float = 2.0) -> int:
    """One GET on a new connection; the number of bytes received (headers included)."""
    with _connect(host, port, timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        buf, total = bytearray(1 << 20), 0
        while n := sock.recv_into(buf):
            total += n
        return total


def latency(host: str, port: int, requests: int) -> dict[str, float]:
    """p50/p99 round trip (connect + GET + close) in ms."""
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        get(host, port, "/")
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 4), "p99_ms": round(times[int(len(times) * 0.99) - 1], 4)}


def throughput(host: str, port: int, size: int) -> dict[str, float]:
    """MB/s of one bulk GET."""
    start = time.perf_counter()
    got = get(host, port, f"/bytes/{size}", timeout=30)
    seconds = time.perf_counter() - start
    if got < size:
        raise SystemExit(f"short read: {got} of {size} bytes")
    return {"mb_per_s": round(size / seconds / 1e6, 1)}


def main() -> None:
    """Parse arguments, measure, print one JSON line."""
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["latency", "throughput"])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--bytes", type=int, default=256 << 20)
    args = p.parse_args()
    result = latency(args.host, args.port, args.requests) if args.mode == "latency" else \
        throughput(args.host, args.port, args.bytes)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
