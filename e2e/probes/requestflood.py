"""A bounded flood of ARP requests or neighbour solicitations for addresses nobody here owns.

Run inside the client namespace: `python -m e2e.probes.requestflood arp|ndp --rate R --seconds S`. What any
host on the LAN can send: broadcast who-has (ARP) or NS to each target's solicited-node group (NDP), for
`--targets` distinct addresses in 198.51.100.128/25 or 2001:db8:ffff:dead::/64 (the tests that flood own
none of them).
It stops by itself: at most 500,000 frames and 15 s. Frames go out in small batches each millisecond, so
the rate holds without a timer per frame. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import time

from e2e.probes import asker, iface
from ironlb.speaker.fast.l2 import packets as pk

MAX_FRAMES, MAX_SECONDS = 500_000, 15.0
ARP_TARGETS, NDP_TARGETS = "198.51.100.128/25", "2001:db8:ffff:dead::/64"


def frames(kind: str, mac: bytes, dev: str, targets: int) -> list[bytes]:
    """One frame per target address."""
    if kind == "arp":
        net, source = ipaddress.IPv4Network(ARP_TARGETS), iface.ipv4(dev)
        return [pk.build_arp(pk.ARP_REQUEST, pk.BROADCAST, mac, source, bytes(6), str(net[i % net.num_addresses]))
                for i in range(targets)]
    net6, source = ipaddress.IPv6Network(NDP_TARGETS), iface.link_local(dev)
    return [asker.neighbor_solicit(mac, source, str(net6[i + 1])) for i in range(targets)]


def main() -> None:
    """Send the flood and report what was sent."""
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["arp", "ndp"])
    p.add_argument("--rate", type=int, default=50_000, help="frames per second")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--targets", type=int, default=1024, help="distinct target addresses")
    p.add_argument("--iface", default="eth0")
    args = p.parse_args()
    seconds, limit = min(args.seconds, MAX_SECONDS), min(int(args.rate * args.seconds), MAX_FRAMES)
    batch = frames(args.kind, iface.mac(args.iface), args.iface, max(1, args.targets))
    ethertype = pk.ETH_P_ARP if args.kind == "arp" else pk.ETH_P_IPV6
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
    sock.bind((args.iface, 0))
    send, n = sock.send, len(batch)
    start = time.monotonic()
    sent = failed = 0
    while sent < limit and (now := time.monotonic()) - start < seconds:
        due = min(limit, int((now - start) * args.rate) + 1)
        while sent < due:
            try:
                send(batch[sent % n])
            except OSError:  # the qdisc is full: counted, not retried
                failed += 1
            sent += 1
        time.sleep(0.001)
    elapsed = time.monotonic() - start
    print(json.dumps({"sent": sent, "failed": failed, "seconds": round(elapsed, 3),
                      "rate": round(sent / elapsed) if elapsed else 0}))


if __name__ == "__main__":
    main()
