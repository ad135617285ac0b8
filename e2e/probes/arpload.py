"""ARP load generator for the arp benchmark: RATE requests/s for DURATION s, reply latency percentiles.

Run inside the client namespace. Replies are matched to requests in order (ARP carries no id;
replies come back in order from a single responder). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import time
from collections import deque

from e2e.probes import asker, iface
from ironlb.speaker.fast.l2 import packets as pk


def main() -> None:
    """Generate load and report."""
    p = argparse.ArgumentParser()
    p.add_argument("ip")
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--iface", default="eth0")
    args = p.parse_args()
    mac = iface.mac(args.iface)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(pk.ETH_P_ARP))
    sock.bind((args.iface, 0))
    sock.setblocking(False)
    frame = pk.build_arp(pk.ARP_REQUEST, pk.BROADCAST, mac, iface.ipv4(args.iface), b"\x00" * 6, args.ip)
    interval = 1.0 / args.rate
    pending: deque[float] = deque()
    latencies: list[float] = []
    sent = 0
    start = time.perf_counter()
    next_send = start
    end = start + args.duration
    while True:
        now = time.perf_counter()
        if now >= end + 0.2:
            break
        if now >= next_send and now < end:
            sock.send(frame)
            pending.append(now)
            sent += 1
            next_send += interval
            continue
        wait = max(0.0, min(next_send, end + 0.2) - now)
        ready, _, _ = select.select([sock], [], [], wait)
        if not ready:
            continue
        while True:
            try:
                data, addr = sock.recvfrom(2048)
            except BlockingIOError:
                break
            stamp = time.perf_counter()
            if addr[2] == 4:
                continue
            arp = asker.parse_arp(data)
            if arp and arp.op == pk.ARP_REPLY and arp.sender_ip == args.ip and arp.target_mac == mac and pending:
                latencies.append((stamp - pending.popleft()) * 1000)
    latencies.sort()

    def pct(q: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))], 4) if latencies else None

    print(json.dumps({"sent": sent, "replies": len(latencies), "p50_ms": pct(50), "p99_ms": pct(99),
                      "achieved_rate": round(sent / args.duration)}))


if __name__ == "__main__":
    main()
