"""Classic BPF programs so the kernel drops everything but ARP and NS/NA before Python sees it (and the
attach call and opcodes that liveness.sourcefilter uses for the heartbeat socket's filter).

With an owned set, the programs go further: only frames naming an owned IP reach Python (ARP: as target or
sender; NS/NA: as target), so a flood of requests for other hosts' addresses never wakes the fast plane.
Each owned IP costs a compare and its own return (never a long jump: classic BPF jumps are 8-bit), up to
the kernel's instruction limit; past it the program passes all ARP or all NS/NA. Frames the interface
accepted only because it is promiscuous (to another host's MAC) are dropped in every program.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import struct

SO_ATTACH_FILTER = 26
LDW, LDH, LDB, JEQ, RET = 0x20, 0x28, 0x30, 0x15, 0x06
AND, JA = 0x54, 0x05  # acc &= k; pc += k
SKF_NET_OFF = 0xFFF00000  # -0x100000 as u32: a load at SKF_NET_OFF + n reads the network header's byte n
MAX_INSNS = 4096  # BPF_MAXINSNS: the kernel refuses a longer classic program
ACCEPT = 0x40000
PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE: the ancillary load of skb->pkt_type
PACKET_OTHERHOST = 3
Instruction = tuple[int, int, int, int]  # (code, jt, jf, k)

# Not for another host (pkt_type), and of ETHERTYPE; else drop (no jump is longer than one instruction).
_ARP_HEAD: list[Instruction] = [
    (LDW, 0, 0, PKTTYPE), (JEQ, 0, 1, PACKET_OTHERHOST), (RET, 0, 0, 0),
    (LDH, 0, 0, 12), (JEQ, 1, 0, 0x0806), (RET, 0, 0, 0),
]
# IPv6 + ICMPv6 (next header 58, no extension headers) neighbour solicitations and advertisements.
_NDP_HEAD: list[Instruction] = [
    (LDW, 0, 0, PKTTYPE), (JEQ, 0, 1, PACKET_OTHERHOST), (RET, 0, 0, 0),
    (LDH, 0, 0, 12), (JEQ, 1, 0, 0x86DD), (RET, 0, 0, 0),
    (LDB, 0, 0, 20), (JEQ, 1, 0, 58), (RET, 0, 0, 0),
    (LDB, 0, 0, 54), (JEQ, 2, 0, 135), (JEQ, 1, 0, 136), (RET, 0, 0, 0),
]
_ARP_TARGET, _ARP_SENDER, _NDP_TARGET_LOW = 38, 28, 74  # the NS/NA target is at 62: its last 32 bits

# All ARP (requests for answering, replies for spotting another MAC answering for our IP).
ARP_PROGRAM: list[Instruction] = [*_ARP_HEAD, (RET, 0, 0, ACCEPT)]
# All NS and NA.
NDP_PROGRAM: list[Instruction] = [*_NDP_HEAD, (RET, 0, 0, ACCEPT)]
# The most owned IPs a program can name (two compares and returns per ARP IP, one per IPv6 IP).
MAX_FILTERED_IPS = (MAX_INSNS - len(_ARP_HEAD) - 3) // 4
MAX_FILTERED_IPV6 = (MAX_INSNS - len(_NDP_HEAD) - 2) // 2


def _any_of(offset: int, values: list[int]) -> list[Instruction]:
    """Load the word at OFFSET; accept if it is one of VALUES, else fall through to what follows."""
    prog: list[Instruction] = [(LDW, 0, 0, offset)]
    for value in values:
        prog += [(JEQ, 0, 1, value), (RET, 0, 0, ACCEPT)]
    return prog


def arp_program(owned_ipv4: list[str]) -> list[Instruction]:
    """ARP frames that ask for (target) or claim (sender) one of OWNED_IPV4; all ARP if too many."""
    if len(owned_ipv4) > MAX_FILTERED_IPS:
        return ARP_PROGRAM
    ips = [int.from_bytes(socket.inet_aton(ip), "big") for ip in owned_ipv4]
    return [*_ARP_HEAD, *_any_of(_ARP_TARGET, ips), *_any_of(_ARP_SENDER, ips), (RET, 0, 0, 0)]


def ndp_program(owned_ipv6: list[str]) -> list[Instruction]:
    """NS/NA frames whose target may be one of OWNED_IPV6; all NS/NA if too many.

    Only the target's last 32 bits are compared (one instruction an IP, so the budget holds more IPs): a
    frame for another address sharing them reaches the responder, which tells them apart.
    """
    if len(owned_ipv6) > MAX_FILTERED_IPV6:
        return NDP_PROGRAM
    lows = sorted({int(ipaddress.IPv6Address(ip)) & 0xFFFFFFFF for ip in owned_ipv6})
    return [*_NDP_HEAD, *_any_of(_NDP_TARGET_LOW, lows), (RET, 0, 0, 0)]


def attach(sock: socket.socket, program: list[Instruction]) -> None:
    """Attach a program to a socket (SO_ATTACH_FILTER): the kernel swaps it atomically, or raises OSError."""
    code = b"".join(struct.pack("HBBI", c, jt, jf, k) for c, jt, jf, k in program)
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
