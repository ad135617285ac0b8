"""Request/answer probes over a fixed set of flows: what a client behind a router sees while nodes drain.

Run inside the client namespace: `python -m e2e.probes.flowprobe HOST [--port P] [--flows N] [--rate HZ]
[--timeout S] --duration S [--first-port P0]`; SIGTERM ends it early, with its tally. A flow is one 5-tuple:
source port P0 + i, the same every time, so a router's ECMP hash sends a flow to the same node until its next
hops change. Probes start at RATE per second in all, the flows taken in turn; each probe is one TCP connection
from the flow's port: connect, GET, the whole answer (the pod server's name) within TIMEOUT, then closed with a
reset, so the port is free at once (no TIME_WAIT) and the next probe of the flow is a new connection on the same
5-tuple. A probe is lost when it gets no whole answer.

At the end, one JSON line: `{"sent": N, "answered": N, "lost": [{"flow": I, "start": T, "failure": WHY}],
"first_pod": {flow: pod}, "pods": {flow: {pod: answers}}, "started": T, "ended": T}` (monotonic times).
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import socket
import struct
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

LINGER_RESET = struct.pack("ii", 1, 0)  # close with RST: the flow's port is free again at once


def probe(host: str, port: int, source_port: int, timeout: float) -> tuple[str | None, str | None]:
    """One request on a new connection from SOURCE_PORT: (the pod that answered, None) or (None, why not)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        s.settimeout(timeout)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", source_port))
        s.connect((host, port))
        s.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        if b"\r\n\r\n" not in data:
            return None, "closed"
        return data.split(b"\r\n\r\n", 1)[1].decode().strip(), None
    except TimeoutError:
        return None, "timeout"
    except OSError as e:
        return None, {errno.ECONNREFUSED: "refused", errno.ECONNRESET: "reset", errno.EHOSTUNREACH: "unreachable",
                      errno.ENETUNREACH: "unreachable", errno.EADDRINUSE: "port-busy"}.get(e.errno or 0, "error")
    finally:
        s.close()


class Tally:
    """What the probes saw, from the worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent = self.answered = 0
        self.lost: list[dict[str, Any]] = []
        self.first_pod: dict[int, str] = {}
        self.pods: dict[int, Counter[str]] = {}

    def record(self, flow: int, start: float, pod: str | None, failure: str | None) -> None:
        with self.lock:
            if pod is None:
                self.lost.append({"flow": flow, "start": round(start, 4), "failure": failure})
                return
            self.answered += 1
            self.first_pod.setdefault(flow, pod)
            self.pods.setdefault(flow, Counter())[pod] += 1


def main() -> None:
    """Probe until DURATION passes, then print the tally."""
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--flows", type=int, default=128)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--first-port", type=int, default=40000)
    args = p.parse_args()
    tally = Tally()
    busy = [threading.Lock() for _ in range(args.flows)]  # a flow's next probe waits for its last one

    def one(flow: int, start: float) -> None:
        with busy[flow]:
            pod, failure = probe(args.host, args.port, args.first_port + flow, args.timeout)
        tally.record(flow, start, pod, failure)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(args.flows, 64)) as pool:
        n = 0
        while (due := started + n / args.rate) < started + args.duration and not stop.is_set():
            stop.wait(max(0.0, due - time.monotonic()))
            pool.submit(one, n % args.flows, time.monotonic())
            n += 1
        tally.sent = n
    print(json.dumps({"sent": tally.sent, "answered": tally.answered, "lost": tally.lost,
                      "first_pod": tally.first_pod, "pods": {f: dict(c) for f, c in tally.pods.items()},
                      "started": started, "ended": time.monotonic()}), flush=True)


if __name__ == "__main__":
    main()
