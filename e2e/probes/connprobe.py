"""What a client sees of a Service: new connections at a fixed rate and a few long-lived ones.

Run inside the client namespace: `python -m e2e.probes.connprobe HOST [--port P] [--rate HZ] [--timeout S]
[--long N] [--long-interval S] [--long-timeout S] --duration S`. New connections start at RATE per second
whatever the earlier ones do (each a GET on its own connection, given up after TIMEOUT); N long-lived
connections each send a GET every LONG_INTERVAL on one keep-alive connection and are opened again when they
break. One JSON line per event, with monotonic timestamps (CLOCK_MONOTONIC is system-wide, so the caller
compares them with its own kill time):

- `{"kind": "new", "start": T, "end": T, "pod": NAME | null, "failure": null | FAILURE}`
- `{"kind": "open", "conn": I, "at": T, "pod": NAME}`: a long-lived connection answered its first request
- `{"kind": "break", "conn": I, "opened": T, "at": T, "pod": NAME, "failure": FAILURE}`

The pod server answers with its pod name, so `pod` says which pod served the connection.
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What an event line records."""

    NEW = "new"  # one new connection, answered or failed
    OPEN = "open"  # a long-lived connection answered its first request
    BREAK = "break"  # a long-lived connection failed a request after it had opened


class Failure(StrEnum):
    """Why a connection or a request on it failed."""

    TIMEOUT = "timeout"  # no connection or no answer in time
    REFUSED = "refused"  # RST to the SYN
    RESET = "reset"  # RST on an established connection
    CLOSED = "closed"  # the peer closed before a whole answer
    UNREACHABLE = "unreachable"  # ICMP unreachable, no route, ARP/NDP unanswered
    MALFORMED = "malformed"  # an answer that is not the pod server's


class RequestFailed(Exception):
    """A request that got no whole answer, and why."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.value)
        self.failure = failure


_ERRNO_FAILURES = {errno.ECONNREFUSED: Failure.REFUSED, errno.ECONNRESET: Failure.RESET, errno.EPIPE: Failure.RESET,
                   errno.EHOSTUNREACH: Failure.UNREACHABLE, errno.ENETUNREACH: Failure.UNREACHABLE,
                   errno.ETIMEDOUT: Failure.TIMEOUT}


def failure_of(exc: OSError) -> Failure:
    """The Failure an OSError from connect/send/recv stands for."""
    if isinstance(exc, socket.timeout):
        return Failure.TIMEOUT
    return _ERRNO_FAILURES.get(exc.errno or 0, Failure.UNREACHABLE)


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to HOST:PORT with TIMEOUT on every operation."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def request(sock: socket.socket, host: str, deadline: float) -> str:
    """One keep-alive GET on SOCK; the pod name it answered. Raises RequestFailed."""
    try:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data) < _answer_length(data):
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(4096)
            if not chunk:
                raise RequestFailed(Failure.CLOSED)
            data += chunk
    except OSError as exc:
        raise RequestFailed(failure_of(exc)) from exc
    head, body = data.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RequestFailed(Failure.MALFORMED)
    return body.decode(errors="replace").strip()


def _answer_length(data: bytes) -> int:
    """Bytes of the whole answer whose headers DATA holds (headers plus Content-Length)."""
    head, _ = data.split(b"\r\n\r\n", 1)
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(head) + 4 + int(value)
    raise RequestFailed(Failure.MALFORMED)


class Output:
    """JSON lines on stdout, one writer at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        """Write one event line."""
        line = json.dumps(event)
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


def new_connection(host: str, port: int, timeout: float, out: Output) -> None:
    """One GET on a fresh connection, given up after TIMEOUT; emit its event."""
    start = time.monotonic()
    pod, failure = None, None
    try:
        with connect(host, port, timeout) as sock:
            pod = request(sock, host, start + timeout)
    except RequestFailed as exc:
        failure = exc.failure
    except OSError as exc:
        failure = failure_of(exc)
    out.emit({"kind": Kind.NEW.value, "start": round(start, 6), "end": round(time.monotonic(), 6), "pod": pod,
              "failure": failure.value if failure else None})


def new_connections(host: str, port: int, rate: float, timeout: float, end: float, out: Output) -> None:
    """Start a new connection every 1/RATE seconds until END, each in a thread of its own, so a slow one
    delays none of the next."""
    period = 1.0 / rate
    workers = int(rate * timeout) + 4  # enough for every attempt that can be in flight at once
    with ThreadPoolExecutor(workers) as pool:
        due = time.monotonic()
        while due < end:
            pool.submit(new_connection, host, port, timeout, out)
            due += period
            time.sleep(max(0.0, due - time.monotonic()))


def long_lived(conn: int, host: str, port: int, interval: float, timeout: float, end: float, out: Output) -> None:
    """Hold one keep-alive connection, a GET every INTERVAL, until END; emit when it opens and when it breaks,
    and open it again after a break."""
    while time.monotonic() < end:
        try:
            sock = connect(host, port, timeout)
        except OSError:
            time.sleep(interval)
            continue
        with sock:
            _hold(conn, sock, host, interval, timeout, end, out)
        time.sleep(interval)  # a connection that fails at once is not retried in a busy loop


def _hold(conn: int, sock: socket.socket, host: str, interval: float, timeout: float, end: float,
          out: Output) -> None:
    """Requests on an open connection until END or until one fails."""
    opened, pod = time.monotonic(), None
    while time.monotonic() < end:
        sent = time.monotonic()
        try:
            answered = request(sock, host, sent + timeout)
        except RequestFailed as exc:
            if pod is not None:  # a connection that never answered did not open: nothing broke
                out.emit({"kind": Kind.BREAK.value, "conn": conn, "opened": round(opened, 6),
                          "at": round(time.monotonic(), 6), "pod": pod, "failure": exc.failure.value})
            return
        if pod is None:
            opened, pod = sent, answered
            out.emit({"kind": Kind.OPEN.value, "conn": conn, "at": round(opened, 6), "pod": pod})
        time.sleep(max(0.0, sent + interval - time.monotonic()))


def main() -> None:
    """Probe until DURATION passes."""
    p = argparse.ArgumentParser(prog="e2e.probes.connprobe")
    p.add_argument("host")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--rate", type=float, default=50.0, help="new connections per second")
    p.add_argument("--timeout", type=float, default=0.3, help="seconds a new connection may take, GET included")
    p.add_argument("--long", type=int, default=4, help="long-lived connections")
    p.add_argument("--long-interval", type=float, default=0.1, help="seconds between requests on one")
    p.add_argument("--long-timeout", type=float, default=1.0, help="seconds a request on one may take")
    p.add_argument("--duration", type=float, required=True)
    args = p.parse_args()
    out = Output()
    end = time.monotonic() + args.duration
    holders = [threading.Thread(target=long_lived, args=(i, args.host, args.port, args.long_interval,
                                                         args.long_timeout, end, out), daemon=True)
               for i in range(args.long)]
    for t in holders:
        t.start()
    new_connections(args.host, args.port, args.rate, args.timeout, end, out)
    for t in holders:
        t.join(timeout=args.long_timeout + 1)


if __name__ == "__main__":
    main()
