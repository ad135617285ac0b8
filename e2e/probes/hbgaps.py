"""Heartbeat gaps as a peer sees them: arrival times of one node's heartbeats, stamped by the kernel.

Run inside the receiving node's namespace: `python -m e2e.probes.hbgaps --src IP --seconds S`. Listens on eth0
for IPv4 UDP from IP to the heartbeat port and prints one JSON object: the count and the gaps between
arrivals (p50, p99, max, in ms). Stamps come from the kernel on receipt (SO_TIMESTAMPNS), so a busy
machine delaying this process does not show up as a gap. It stops by itself after at most 60 s.
"""

from __future__ import annotations

import argparse
import itertools
import json
import select
import socket
import struct
import time

ETH_P_IP, SO_TIMESTAMPNS, PACKET_OUTGOING = 0x0800, 35, 4
MAX_SECONDS = 60.0


def arrivals(src: str, port: int, seconds: float, iface: str) -> list[float]:
    """Kernel receive times (s) of the matching packets seen within SECONDS."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((iface, 0))
    want, stamps = socket.inet_aton(src), []
    deadline = time.monotonic() + min(seconds, MAX_SECONDS)
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        frame, ancillary, _, addr = sock.recvmsg(2048, 64)
        ip = frame[14:]
        if addr[2] == PACKET_OUTGOING or len(ip) < 28 or ip[9] != 17 or ip[12:16] != want:
            continue
        if struct.unpack_from("!H", ip, (ip[0] & 0x0F) * 4 + 2)[0] != port:
            continue
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", data[:16])
                stamps.append(sec + nsec / 1e9)
    return stamps


def percentile(values: list[float], q: float) -> float:
    """The Q-th percentile (nearest rank) of VALUES."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def main() -> None:
    """Listen, then report."""
    p = argparse.ArgumentParser()
    p.add_argument("--src", required=True)
    p.add_argument("--port", type=int, default=7946)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--iface", default="eth0")
    args = p.parse_args()
    stamps = arrivals(args.src, args.port, args.seconds, args.iface)
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
    print(json.dumps({"heartbeats": len(stamps),
                      "gap_p50_ms": round(percentile(gaps, 50), 2) if gaps else None,
                      "gap_p99_ms": round(percentile(gaps, 99), 2) if gaps else None,
                      "gap_max_ms": round(max(gaps), 2) if gaps else None}))


if __name__ == "__main__":
    main()
