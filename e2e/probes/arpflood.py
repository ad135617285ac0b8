"""A bounded flood of spoofed ARP replies claiming IPs: what any host on the LAN can send.

Run inside the client namespace: `python -m e2e.probes.arpflood IP [IP...] --count N --rate R`. Each IP is
claimed in turn; the ARP sender MAC cycles through `--macs` made-up locally administered addresses (the
Ethernet source stays the client's own, so the lab's bridge learns nothing new). It stops by itself: at most
100,000 frames and 30 s. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import socket
import time

from e2e.probes import iface
from ironlb.speaker.fast.l2 import packets as pk

MAX_COUNT, MAX_SECONDS = 100_000, 30.0


def main() -> None:
    """Send the flood and report what was sent."""
    p = argparse.ArgumentParser()
    p.add_argument("ips", nargs="+", metavar="ip")
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--rate", type=int, default=2_500, help="frames per second")
    p.add_argument("--macs", type=int, default=50, help="distinct spoofed sender MACs")
    p.add_argument("--iface", default="eth0")
    args = p.parse_args()
    count = min(args.count, MAX_COUNT)
    own = iface.mac(args.iface)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(pk.ETH_P_ARP))
    sock.bind((args.iface, 0))
    frames = []
    for i in range(max(1, args.macs)):
        spoofed = bytes([0x02, 0x5A, 0, 0, i >> 8 & 0xFF, i & 0xFF])
        for ip in args.ips:
            frame = pk.build_arp(pk.ARP_REPLY, pk.BROADCAST, spoofed, ip, pk.BROADCAST, ip)
            frames.append(frame[:6] + own + frame[12:])  # Ethernet source: the client's own MAC
    interval = 1.0 / max(1, args.rate)
    start = time.monotonic()
    sent = 0
    while sent < count and time.monotonic() - start < MAX_SECONDS:
        due = start + sent * interval
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        sock.send(frames[sent % len(frames)])
        sent += 1
    print(json.dumps({"sent": sent, "seconds": round(time.monotonic() - start, 3)}))


if __name__ == "__main__":
    main()
