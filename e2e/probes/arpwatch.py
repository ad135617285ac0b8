"""Listen for gratuitous ARPs for one IP for a bounded time; one JSON line per frame seen.

Run inside a lab namespace: `python -m e2e.probes.arpwatch --iface eth0 --seconds 4 IP`. Each line is
{"mac": sender MAC, "t": monotonic seconds}, so tests can count refreshes and their spacing.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import time

from e2e.probes import asker
from ironlb.speaker.fast.l2 import packets as pk


def main() -> None:
    """Watch and print."""
    p = argparse.ArgumentParser()
    p.add_argument("ip")
    p.add_argument("--iface", default="eth0")
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(pk.ETH_P_ARP))
    sock.bind((args.iface, 0))
    end = time.monotonic() + min(args.seconds, 60.0)
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            break
        data, addr = sock.recvfrom(2048)
        arp = asker.parse_arp(data)
        if addr[2] != socket.PACKET_OUTGOING and arp and arp.sender_ip == arp.target_ip == args.ip:
            print(json.dumps({"mac": pk.mac_str(arp.sender_mac), "t": round(time.monotonic(), 3)}), flush=True)


if __name__ == "__main__":
    main()
