"""Sample ARP for many IPs continuously: one round of requests every PERIOD, replies collected per round.

Run inside the client namespace: `python -m e2e.probes.arpsampler --seconds 60 IP...`. One JSON line per
round: {"t": monotonic start, "a": {ip: [answering MACs]}} (an IP with no answer has []). Bounded
by --seconds (at most an hour) and by a stop file, so a caller that dies never leaves it running.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import time

from e2e.probes import asker, iface
from ironlb.speaker.fast.l2 import packets as pk


def main() -> None:
    """Sample until the time is up or the stop file appears."""
    p = argparse.ArgumentParser()
    p.add_argument("ips", nargs="+")
    p.add_argument("--iface", default="eth0")
    p.add_argument("--period", type=float, default=0.05)
    p.add_argument("--window", type=float, default=0.03)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--stop-file", default="")
    args = p.parse_args()
    mac, me = iface.mac(args.iface), iface.ipv4(args.iface)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(pk.ETH_P_ARP))
    sock.bind((args.iface, 0))
    frames = [pk.build_arp(pk.ARP_REQUEST, pk.BROADCAST, mac, me, b"\x00" * 6, ip) for ip in args.ips]
    wanted = set(args.ips)
    end = time.monotonic() + min(args.seconds, 3600.0)
    while time.monotonic() < end and not (args.stop_file and os.path.exists(args.stop_file)):
        start = time.monotonic()
        answers: dict[str, set[str]] = {ip: set() for ip in args.ips}
        for frame in frames:
            sock.send(frame)
        while (left := start + args.window - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            data, addr = sock.recvfrom(2048)
            arp = asker.parse_arp(data)
            if (addr[2] != socket.PACKET_OUTGOING and arp and arp.op == pk.ARP_REPLY and arp.target_mac == mac
                    and arp.sender_ip in wanted):
                answers[arp.sender_ip].add(pk.mac_str(arp.sender_mac))
        print(json.dumps({"t": round(start, 4), "a": {ip: sorted(m) for ip, m in answers.items()}}), flush=True)
        time.sleep(max(0.0, start + args.period - time.monotonic()))


if __name__ == "__main__":
    main()
