"""Ethernet + ARP and Ethernet + IPv6 + ICMPv6 neighbour discovery frames: parse and build with struct.

No scapy: a reply is a few struct calls. (Tests, which depend on scapy, cross-check the bytes with it.)
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ARP_REQUEST, ARP_REPLY = 1, 2
ICMPV6 = 58
NDP_SOLICIT, NDP_ADVERT = 135, 136
OPT_SOURCE_LL, OPT_TARGET_LL = 1, 2
NA_FLAG_SOLICITED, NA_FLAG_OVERRIDE = 0x40000000, 0x20000000
BROADCAST = b"\xff" * 6
ALL_NODES = ipaddress.IPv6Address("ff02::1")

_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IP6 = struct.Struct("!IHBB16s16s")


def mac_bytes(mac: str) -> bytes:
    """aa:bb:cc:dd:ee:ff -> 6 bytes."""
    return bytes.fromhex(mac.replace(":", ""))


def mac_str(raw: bytes) -> str:
    """6 bytes -> aa:bb:cc:dd:ee:ff."""
    return ":".join(f"{b:02x}" for b in raw)


@dataclass(frozen=True)
class Ndp:
    """A parsed neighbour solicitation or advertisement."""

    type: int
    src_ip: str
    dst_ip: str
    target: str
    link_addr: bytes | None  # source (NS) or target (NA) link-layer address option
    eth_src: bytes
    flags: int = 0


_ARP_FRAME = struct.Struct("!6s6sH6sH6s4s6s4s")  # eth dst, src, type; htype..plen; op; sha, spa, tha, tpa
_ARP_HEADER = bytes.fromhex("000108000604")  # Ethernet hardware, IPv4 protocol, 6- and 4-byte addresses
_REPLY_HEAD = ETH_P_ARP.to_bytes(2, "big") + _ARP_HEADER + ARP_REPLY.to_bytes(2, "big")


def arp_fields(frame: bytes) -> tuple[int, bytes, bytes, bytes, bytes, bytes] | None:
    """(op, eth source, sender MAC, sender IP, target MAC, target IP) of an IPv4-over-Ethernet ARP frame,
    addresses as raw bytes; None for anything else. The responder's path: one unpack, no objects made."""
    if len(frame) < _ARP_FRAME.size:
        return None
    _, src, ethertype, header, op, sha, spa, tha, tpa = _ARP_FRAME.unpack_from(frame)
    if ethertype != ETH_P_ARP or header != _ARP_HEADER:
        return None
    return op, src, sha, spa, tha, tpa


def arp_reply_raw(our_mac: bytes, sender_mac: bytes, sender_ip: bytes, vip: bytes, at: bytes | None = None) -> bytes:
    """The unicast reply to a request from SENDER_MAC / SENDER_IP saying VIP is at OUR_MAC (raw addresses).

    AT: the MAC the reply names instead, when answering for a peer (the frame still comes from OUR_MAC, so
    switches keep learning each MAC on its own port)."""
    return sender_mac + our_mac + _REPLY_HEAD + (at or our_mac) + vip + sender_mac + sender_ip


def build_arp(op: int, eth_dst: bytes, sender_mac: bytes, sender_ip: str, target_mac: bytes, target_ip: str) -> bytes:
    """An Ethernet ARP frame."""
    return _ETH.pack(eth_dst, sender_mac, ETH_P_ARP) + _ARP.pack(
        1, 0x0800, 6, 4, op, sender_mac, socket.inet_pton(socket.AF_INET, sender_ip), target_mac,
        socket.inet_pton(socket.AF_INET, target_ip))  # inet_pton: dotted quads only, as strict as ipaddress


def gratuitous_arp(our_mac: bytes, vip: str) -> bytes:
    """A broadcast gratuitous ARP (RFC 5227 announcement) for VIP."""
    return build_arp(ARP_REQUEST, BROADCAST, our_mac, vip, b"\x00" * 6, vip)


def solicited_node(ip: str) -> ipaddress.IPv6Address:
    """The solicited-node multicast address of an IPv6 address (ff02::1:ffXX:XXXX)."""
    low24 = int(ipaddress.IPv6Address(ip)) & 0xFFFFFF
    return ipaddress.IPv6Address(int(ipaddress.IPv6Address("ff02::1:ff00:0")) | low24)


def multicast_mac(ip: ipaddress.IPv6Address) -> bytes:
    """The Ethernet multicast MAC of an IPv6 multicast address (33:33:xx:xx:xx:xx)."""
    return b"\x33\x33" + ip.packed[-4:]


def _checksum(src: bytes, dst: bytes, payload: bytes) -> int:
    pseudo = src + dst + struct.pack("!I3xB", len(payload), ICMPV6)
    data = pseudo + payload + (b"\x00" if len(payload) % 2 else b"")
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmpv6_frame(eth_dst: bytes, eth_src: bytes, src: str, dst: str, icmp: bytes) -> bytes:
    """An Ethernet + IPv6 frame (hop limit 255) carrying the ICMPv6 message ICMP, its checksum filled in."""
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    icmp = icmp[:2] + struct.pack("!H", _checksum(s, d, icmp)) + icmp[4:]
    return _ETH.pack(eth_dst, eth_src, ETH_P_IPV6) + _IP6.pack(6 << 28, len(icmp), ICMPV6, 255, s, d) + icmp


def parse_ndp(frame: bytes) -> Ndp | None:
    """Parse an Ethernet/IPv6 NS or NA (hop limit 255, no extension headers); None otherwise."""
    if len(frame) < _ETH.size + _IP6.size + 24:
        return None
    _, eth_src, ethertype = _ETH.unpack_from(frame)
    if ethertype != ETH_P_IPV6:
        return None
    _, plen, nxt, hops, src, dst = _IP6.unpack_from(frame, _ETH.size)
    icmp = frame[_ETH.size + _IP6.size:_ETH.size + _IP6.size + plen]
    if nxt != ICMPV6 or hops != 255 or len(icmp) < 24 or icmp[0] not in (NDP_SOLICIT, NDP_ADVERT) or icmp[1] != 0:
        return None
    flags = struct.unpack_from("!I", icmp, 4)[0]
    target = str(ipaddress.IPv6Address(icmp[8:24]))
    link_addr = None
    opts = icmp[24:]
    while len(opts) >= 8 and opts[1]:
        kind, length = opts[0], opts[1] * 8
        if kind in (OPT_SOURCE_LL, OPT_TARGET_LL) and length >= 8:
            link_addr = bytes(opts[2:8])
        opts = opts[length:]
    return Ndp(icmp[0], str(ipaddress.IPv6Address(src)), str(ipaddress.IPv6Address(dst)), target, link_addr,
               eth_src, flags)


def neighbor_advert(our_mac: bytes, src_ip: str, vip: str, dst_ip: str, eth_dst: bytes, solicited: bool,
                    at: bytes | None = None) -> bytes:
    """An NA saying VIP is at OUR_MAC, or at AT for a peer (solicited: to the asker; else to all nodes, override
    set)."""
    flags = NA_FLAG_OVERRIDE | (NA_FLAG_SOLICITED if solicited else 0)
    icmp = struct.pack("!BBHI16s", NDP_ADVERT, 0, 0, flags, ipaddress.IPv6Address(vip).packed)
    icmp += struct.pack("!BB6s", OPT_TARGET_LL, 1, at or our_mac)
    return icmpv6_frame(eth_dst, our_mac, src_ip, dst_ip, icmp)


def ndp_reply(our_mac: bytes, our_link_local: str, vip: str, solicit: Ndp, at: bytes | None = None) -> bytes:
    """The solicited NA answering SOLICIT (to all nodes if the asker had no address yet); AT as for
    neighbor_advert."""
    if solicit.src_ip == "::":
        return neighbor_advert(our_mac, our_link_local, vip, str(ALL_NODES), multicast_mac(ALL_NODES), False, at)
    eth_dst = solicit.link_addr or solicit.eth_src
    return neighbor_advert(our_mac, our_link_local, vip, solicit.src_ip, eth_dst, True, at)


def unsolicited_na(our_mac: bytes, our_link_local: str, vip: str) -> bytes:
    """An unsolicited NA to all nodes for VIP (takeover announcement)."""
    return neighbor_advert(our_mac, our_link_local, vip, str(ALL_NODES), multicast_mac(ALL_NODES), False)
