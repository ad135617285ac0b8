"""A bounded flood of idle and slow TCP connections, plus a loop of /metrics requests, against one port.

`python -m e2e.probes.connflood IP PORT --connections N --seconds S`: keeps up to N connections open to
IP:PORT for S seconds (one in three trickles a request head a byte at a time), opening a new one for each
the server drops, at most 3 N opens in all; beside it, --scrapers threads request /metrics without a
token, again and again. Prints one JSON line: opened, dropped by the server, held at the end, the
/metrics answers by status. Bounded in count and time; it stops by itself.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import http.client
import json
import resource
import select
import socket
import threading
import time

BATCH = 500  # connections opened per step
FIRST_PORT, LAST_PORT = 10_000, 64_999  # source ports bound explicitly: more than the ephemeral range


class Flood:
    """Idle and slow connections to (IP, PORT)."""

    def __init__(self, ip: str, port: int, target: int, max_opens: int,
                 ports: tuple[int, int] = (FIRST_PORT, LAST_PORT)) -> None:
        self.addr, self.target, self.max_opens = (ip, port), target, max_opens
        self.family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self.poll = select.epoll()
        self.socks: dict[int, socket.socket] = {}
        self.slow: dict[int, int] = {}  # fd -> bytes of the head sent so far
        self.opened = self.dropped = self.failed = 0
        self.ports = ports
        self._port = ports[0]

    def open_more(self) -> None:
        """Open up to BATCH connections, toward TARGET held."""
        for _ in range(min(BATCH, self.target - len(self.socks), self.max_opens - self.opened)):
            sock = socket.socket(self.family, socket.SOCK_STREAM)
            sock.setblocking(False)
            if not self._bind(sock):
                sock.close()
                self.failed += 1
                return
            code = sock.connect_ex(self.addr)
            if code not in (0, errno.EINPROGRESS):
                sock.close()
                self.failed += 1
                continue
            self.opened += 1
            self.socks[sock.fileno()] = sock
            self.poll.register(sock.fileno(), select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLERR)
            if self.opened % 3 == 0:
                self.slow[sock.fileno()] = 0

    def _bind(self, sock: socket.socket) -> bool:
        """Bind the next free source port of the range, going round it once at most (reset ones are free again)."""
        first, last = self.ports
        for _ in range(last - first + 1):
            port = self._port
            self._port = first if port >= last else port + 1
            try:
                sock.bind(("", port))
                return True
            except OSError:
                continue
        return False

    def reap(self, timeout: float) -> None:
        """Close what the server closed or reset."""
        for fd, _ in self.poll.poll(timeout):
            sock = self.socks.pop(fd, None)
            self.slow.pop(fd, None)
            if sock is not None:
                self.poll.unregister(fd)
                sock.close()
                self.dropped += 1

    def trickle(self, head: bytes = b"GET /metrics HTTP/1.1\r\nX-Slow: ") -> None:
        """One more byte of a request head on each slow connection."""
        for fd, sent in list(self.slow.items()):
            with contextlib.suppress(OSError):
                self.socks[fd].send(head[sent % len(head):sent % len(head) + 1])
                self.slow[fd] = sent + 1

    def close(self) -> None:
        """Close everything."""
        for sock in self.socks.values():
            sock.close()
        self.poll.close()


def scrape_loop(ip: str, port: int, until: float, statuses: collections.Counter[str]) -> None:
    """GET /metrics (no token) until UNTIL, counting answers by status (or 'error')."""
    while time.monotonic() < until:
        conn = http.client.HTTPConnection(ip, port, timeout=2)
        try:
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            resp.read()
            statuses[str(resp.status)] += 1
        except (OSError, http.client.HTTPException):
            statuses["error"] += 1
            time.sleep(0.05)
        finally:
            conn.close()


def main() -> None:
    """Run the flood; print its figures."""
    p = argparse.ArgumentParser(prog="connflood", description=__doc__)
    p.add_argument("ip")
    p.add_argument("port", type=int)
    p.add_argument("--connections", type=int, default=30_000)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--scrapers", type=int, default=4)
    p.add_argument("--ports", default=f"{FIRST_PORT}-{LAST_PORT}", help="source ports to bind, FIRST-LAST "
                   "(several floods at once: one range each)")
    args = p.parse_args()
    first, last = (int(x) for x in args.ports.split("-"))
    need = args.connections + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):  # root may raise its own hard limit
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), max(hard, need)))
    flood = Flood(args.ip, args.port, args.connections, 3 * args.connections, (first, last))
    until = time.monotonic() + min(args.seconds, 120.0)
    statuses: collections.Counter[str] = collections.Counter()
    scrapers = [threading.Thread(target=scrape_loop, args=(args.ip, args.port, until, statuses), daemon=True)
                for _ in range(args.scrapers)]
    for thread in scrapers:
        thread.start()
    peak, last_trickle = 0, 0.0
    try:
        while time.monotonic() < until:
            flood.open_more()
            flood.reap(0.05)
            peak = max(peak, len(flood.socks))
            if time.monotonic() - last_trickle > 1.0:
                flood.trickle()
                last_trickle = time.monotonic()
        flood.reap(0.2)
        held = len(flood.socks)
    finally:
        flood.close()
    for thread in scrapers:
        thread.join(3)
    print(json.dumps({"opened": flood.opened, "dropped": flood.dropped, "failed": flood.failed, "held_end": held,
                      "held_peak": peak, "metrics": dict(statuses)}), flush=True)


if __name__ == "__main__":
    main()
