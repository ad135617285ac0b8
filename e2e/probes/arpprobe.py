"""Send one ARP request (or IPv6 neighbour solicitation) and print every reply seen within a window.

Run inside a lab namespace: `python -m e2e.probes.arpprobe --iface eth0 IP`. One JSON line per reply
({"mac": ..., "ms": ...}), so tests can count answers exactly (two replies = a split brain).
`--unicast MAC` sends what the kernel sends to re-check a neighbour it knows: the ARP request to
MAC alone, or the NS to IP itself (not its solicited-node group) at MAC.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import select
import socket
import time

from e2e.probes import asker, iface
from ironlb.speaker.fast.l2 import packets as pk


def main() -> None:
    """Probe and print replies."""
    p = argparse.ArgumentParser()
    p.add_argument("ip")
    p.add_argument("--iface", default="eth0")
    p.add_argument("--wait", type=float, default=1.0)
    p.add_argument("--unicast", metavar="MAC", help="a reachability probe sent to this MAC only")
    args = p.parse_args()
    mac = iface.mac(args.iface)
    v6 = ":" in args.ip
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(pk.ETH_P_IPV6 if v6 else pk.ETH_P_ARP))
    sock.bind((args.iface, 0))
    dst = pk.mac_bytes(args.unicast) if args.unicast else None
    if v6:
        source = iface.link_local(args.iface)
        frame = asker.unicast_solicit(mac, dst, source, args.ip) if dst else asker.neighbor_solicit(
            mac, str(ipaddress.IPv6Address(source)), args.ip)
    else:
        frame = pk.build_arp(pk.ARP_REQUEST, dst or pk.BROADCAST, mac, iface.ipv4(args.iface), b"\x00" * 6, args.ip)
    start = time.monotonic()
    sock.send(frame)
    while (left := args.wait - (time.monotonic() - start)) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            break
        data, addr = sock.recvfrom(2048)
        if addr[2] == 4:  # outgoing
            continue
        if v6:
            nd = pk.parse_ndp(data)
            if nd and nd.type == pk.NDP_ADVERT and nd.target == str(ipaddress.IPv6Address(args.ip)):
                print(json.dumps({"mac": pk.mac_str(nd.link_addr or nd.eth_src),
                                  "ms": round((time.monotonic() - start) * 1000, 3)}))
        else:
            arp = asker.parse_arp(data)
            if arp and arp.op == pk.ARP_REPLY and arp.sender_ip == args.ip and arp.target_mac == mac:
                elapsed_ms = round((time.monotonic() - start) * 1000, 3)
                print(json.dumps({"mac": pk.mac_str(arp.sender_mac), "ms": elapsed_ms}))


if __name__ == "__main__":
    main()
