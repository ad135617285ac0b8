"""Classic BPF programs so the kernel drops everything but ARP and NS/NA before Python sees it."""

from __future__ import annotations

import ctypes
import socket
import struct

SO_ATTACH_FILTER = 26
_LDW, _LDH, _LDB, _JEQ, _RET = 0x20, 0x28, 0x30, 0x15, 0x06
MAX_FILTERED_IPS = 100  # classic BPF jumps are 8-bit: past this, let all ARP through
ACCEPT = 0x40000
Instruction = tuple[int, int, int, int]  # (code, jt, jf, k)

# ARP only (requests for answering, replies for spotting another MAC answering for our IP).
ARP_PROGRAM: list[Instruction] = [
    (_LDH, 0, 0, 12),          # ethertype
    (_JEQ, 0, 1, 0x0806),      # ARP?
    (_RET, 0, 0, ACCEPT),
    (_RET, 0, 0, 0),
]

# IPv6 + ICMPv6 (next header 58, no extension headers) neighbour solicitations and advertisements.
NDP_PROGRAM: list[Instruction] = [
    (_LDH, 0, 0, 12),          # 0 ethertype
    (_JEQ, 0, 6, 0x86DD),      # 1 IPv6? else drop
    (_LDB, 0, 0, 20),          # 2 next header
    (_JEQ, 0, 4, 58),          # 3 ICMPv6? else drop
    (_LDB, 0, 0, 54),          # 4 ICMPv6 type
    (_JEQ, 1, 0, 135),         # 5 NS -> accept
    (_JEQ, 0, 1, 136),         # 6 NA -> accept, else drop
    (_RET, 0, 0, ACCEPT),      # 7
    (_RET, 0, 0, 0),           # 8
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
    prog: list[Instruction] = [(_LDH, 0, 0, 12), (_JEQ, 0, drop - 2, 0x0806), (_LDW, 0, 0, 38)]
    for i, ip in enumerate(ips):
        pc = 3 + i
        prog.append((_JEQ, accept - pc - 1, 0, ip))
    prog.append((_LDW, 0, 0, 28))
    for i, ip in enumerate(ips):
        pc = 4 + n + i
        prog.append((_JEQ, accept - pc - 1, 0, ip))
    prog += [(_RET, 0, 0, 0), (_RET, 0, 0, ACCEPT)]
    return prog


def run(program: list[Instruction], frame: bytes) -> int:
    """Interpret a program on a frame (for tests): the number of bytes it would accept."""
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == _LDH:
            if k + 2 > len(frame):
                return 0
            acc = struct.unpack_from("!H", frame, k)[0]
        elif code == _LDW:
            if k + 4 > len(frame):
                return 0
            acc = struct.unpack_from("!I", frame, k)[0]
        elif code == _LDB:
            if k + 1 > len(frame):
                return 0
            acc = frame[k]
        elif code == _JEQ:
            pc += jt if acc == k else jf
        elif code == _RET:
            return min(k, len(frame))
        pc += 1


def attach(sock: socket.socket, program: list[Instruction]) -> None:
    """Attach a program to a socket (SO_ATTACH_FILTER)."""
    code = b"".join(struct.pack("HBBI", c, jt, jf, k) for c, jt, jf, k in program)
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
