"""Which sources may reach the heartbeat socket: peers' node addresses and the heartbeat port, before any crypto.

The socket listens on every interface, so anything that can route to a node (a pod, a LAN host) can send
to its port, and each datagram that reached the MAC check would cost an HMAC per accepted key. Two checks
stop non-peers first: a classic BPF socket filter drops them in the kernel, before they take a place in the
receive buffer (where a flood would crowd out real heartbeats); and the same check runs in user space,
before decoding, in case the kernel refused the filter. A peer's speaker sends from the heartbeat port it
listens on, which no other process on that node can bind (the socket is not shared: no SO_REUSEADDR), so
a process on a peer's host network, sending from that node's address, is refused too. A datagram forged
with a peer's address and port (a raw socket) passes both, and is then refused by its MAC.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ironlb.speaker.fast.l2.bpf import ACCEPT, AND, JA, JEQ, LDB, LDH, LDW, RET, SKF_NET_OFF, Instruction
from ironlb.speaker.fast.liveness.membership import plain

# The kernel refuses a classic program longer than this (BPF_MAXINSNS): past it, no filter is attached and the
# user-space check alone stands.
MAX_INSTRUCTIONS = 4096


def split(addresses: Iterable[str]) -> tuple[list[int], list[bytes]]:
    """ADDRESSES as sorted IPv4 (u32) and IPv6 (16 bytes) lists; IPv4-mapped ones count as IPv4."""
    v4: set[int] = set()
    v6: set[bytes] = set()
    for text in addresses:
        ip = ipaddress.ip_address(plain(text))
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
            v6.add(ip.packed)
        else:
            v4.add(int(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip))
    return sorted(v4), sorted(v6)


def program(addresses: Iterable[str], port: int | None = None) -> list[Instruction] | None:
    """A socket filter for a (dual-stack) UDP socket that accepts datagrams from ADDRESSES (and source PORT,
    if given) only; None if it would be too long for the kernel. Every comparison jumps a few instructions
    at most (the jump fields are 8 bits), so its length is all that limits it."""
    v4, v6 = split(addresses)
    net = SKF_NET_OFF
    v4_part: list[Instruction] = [(LDW, 0, 0, net + 12)]  # IPv4 source address
    for ip in v4:
        v4_part += [(JEQ, 0, 1, ip), (RET, 0, 0, ACCEPT)]
    v4_part.append((RET, 0, 0, 0))
    v6_part: list[Instruction] = []
    for packed in v6:
        words = [int.from_bytes(packed[i:i + 4], "big") for i in range(0, 16, 4)]
        for n, word in enumerate(words):  # the source address is bytes 8-23 of the IPv6 header
            v6_part += [(LDW, 0, 0, net + 8 + 4 * n), (JEQ, 0, 7 - 2 * n, word)]
        v6_part.append((RET, 0, 0, ACCEPT))
    v6_part.append((RET, 0, 0, 0))
    head: list[Instruction] = []
    if port is not None:  # a UDP socket's filter sees the datagram from its UDP header on: the source port first
        head += [(LDH, 0, 0, 0), (JEQ, 1, 0, port), (RET, 0, 0, 0)]
    head += [
        (LDB, 0, 0, net),          # version and header length
        (AND, 0, 0, 0xF0),
        (JEQ, 1, 0, 0x40),         # IPv4: skip the jump over its part
        (JA, 0, 0, len(v4_part)),  # IPv6: to its part
    ]
    prog = head + v4_part + v6_part
    return prog if len(prog) <= MAX_INSTRUCTIONS else None
