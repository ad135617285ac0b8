"""Classic BPF programs so the kernel drops everything but ARP and NS/NA before Python sees it (and the
interpreter and attach call that liveness.sourcefilter uses for the heartbeat socket's filter)."""

from __future__ import annotations

import ctypes
import socket
import struct

SO_ATTACH_FILTER = 26
LDW, LDH, LDB, JEQ, RET = 0x20, 0x28, 0x30, 0x15, 0x06
AND, JA = 0x54, 0x05  # acc &= k; pc += k
SKF_NET_OFF = 0xFFF00000  # -0x100000 as u32: a load at SKF_NET_OFF + n reads the network header's byte n
MAX_FILTERED_IPS = 100  # classic BPF jumps are 8-bit: past this, let all ARP through
ACCEPT = 0x40000
Instruction = tuple[int, int, int, int]  # (code, jt, jf, k)

# ARP only (requests for answering, replies for spotting another MAC answering for our IP).
ARP_PROGRAM: list[Instruction] = [
    (LDH, 0, 0, 12),          # ethertype
    (JEQ, 0, 1, 0x0806),      # ARP?
    (RET, 0, 0, ACCEPT),
    (RET, 0, 0, 0),
]

# IPv6 + ICMPv6 (next header 58, no extension headers) neighbour solicitations and advertisements.
NDP_PROGRAM: list[Instruction] = [
    (LDH, 0, 0, 12),          # 0 ethertype
    (JEQ, 0, 6, 0x86DD),      # 1 IPv6? else drop
    (LDB, 0, 0, 20),          # 2 next header
    (JEQ, 0, 4, 58),          # 3 ICMPv6? else drop
    (LDB, 0, 0, 54),          # 4 ICMPv6 type
    (JEQ, 1, 0, 135),         # 5 NS -> accept
    (JEQ, 0, 1, 136),         # 6 NA -> accept, else drop
    (RET, 0, 0, ACCEPT),      # 7
    (RET, 0, 0, 0),           # 8
]


def arp_program(owned_ipv4: list[str]) -> list[Instruction]:
    """ARP frames that ask for (target) or claim (sender) one of OWNED_IPV4; all ARP if too many.

    Non-owners then never wake up for the flood of requests meant for other nodes' IPs.
    """
    if len(owned_ipv4) > MAX_FILTERED_IPS:
        return ARP_PROGRAM
    ips = [int.from_bytes(socket.inet_aton(ip), "big") for ip in owned_ipv4]
    n = len(ips)
    # Layout: 0 ldh, 1 jeq ARP, 2 ld tpa, 3..3+n-1 jeq, 3+n ld spa, 4+n..3+2n jeq, 4+2n drop, 5+2n accept
    drop, accept = 4 + 2 * n, 5 + 2 * n
    prog: list[Instruction] = [(LDH, 0, 0, 12), (JEQ, 0, drop - 2, 0x0806), (LDW, 0, 0, 38)]
    for i, ip in enumerate(ips):
        pc = 3 + i
        prog.append((JEQ, accept - pc - 1, 0, ip))
    prog.append((LDW, 0, 0, 28))
    for i, ip in enumerate(ips):
        pc = 4 + n + i
        prog.append((JEQ, accept - pc - 1, 0, ip))
    prog += [(RET, 0, 0, 0), (RET, 0, 0, ACCEPT)]
    return prog


def run(program: list[Instruction], frame: bytes, network: bytes = b"") -> int:
    """Interpret a program on a frame (for tests): the number of bytes it would accept. Loads at SKF_NET_OFF
    and beyond read NETWORK (the packet's IP header on, for a UDP socket, where FRAME is the UDP datagram)."""
    acc, pc = 0, 0
    sizes = {LDH: (2, "!H"), LDW: (4, "!I"), LDB: (1, "!B")}
    while True:
        code, jt, jf, k = program[pc]
        if code in sizes:
            data, at = (network, k - SKF_NET_OFF) if k >= SKF_NET_OFF else (frame, k)
            size, fmt = sizes[code]
            if at + size > len(data):
                return 0
            acc = struct.unpack_from(fmt, data, at)[0]
        elif code == AND:
            acc &= k
        elif code == JA:
            pc += k
        elif code == JEQ:
            pc += jt if acc == k else jf
        elif code == RET:
            return min(k, len(frame))
        pc += 1


def attach(sock: socket.socket, program: list[Instruction]) -> None:
    """Attach a program to a socket (SO_ATTACH_FILTER)."""
    code = b"".join(struct.pack("HBBI", c, jt, jf, k) for c, jt, jf, k in program)
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
