"""The asking host's side of ARP and NDP: the solicitations a neighbour sends, and ARP frames read as records.

The speaker only answers; these are what the probes (and the responder's tests) send and read. Built on
IronLB's own packet code, so a frame here is laid out exactly as the responder parses it.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from ironlb.speaker.fast.l2 import packets as pk


@dataclass(frozen=True)
class Arp:
    """A parsed ARP packet (IPv4 over Ethernet)."""

    op: int
    sender_mac: bytes
    sender_ip: str
    target_mac: bytes
    target_ip: str
    eth_src: bytes


def parse_arp(frame: bytes) -> Arp | None:
    """Parse an Ethernet ARP frame; None if it is not IPv4-over-Ethernet ARP."""
    fields = pk.arp_fields(frame)
    if fields is None:
        return None
    op, src, sha, spa, tha, tpa = fields
    return Arp(op, sha, socket.inet_ntoa(spa), tha, socket.inet_ntoa(tpa), src)


def _solicit(our_mac: bytes, target: str) -> bytes:
    """The ICMPv6 part of an NS for TARGET, with our MAC as its source link-layer address."""
    icmp = struct.pack("!BBHI16s", pk.NDP_SOLICIT, 0, 0, 0, ipaddress.IPv6Address(target).packed)
    return icmp + struct.pack("!BB6s", pk.OPT_SOURCE_LL, 1, our_mac)


def neighbor_solicit(our_mac: bytes, src_ip: str, target: str) -> bytes:
    """A multicast NS for TARGET, to its solicited-node group."""
    group = pk.solicited_node(target)
    return pk.icmpv6_frame(pk.multicast_mac(group), our_mac, src_ip, str(group), _solicit(our_mac, target))


def unicast_solicit(our_mac: bytes, eth_dst: bytes, src_ip: str, target: str) -> bytes:
    """A unicast NS for TARGET sent to TARGET itself at ETH_DST: the kernel's reachability probe."""
    return pk.icmpv6_frame(eth_dst, our_mac, src_ip, target, _solicit(our_mac, target))
