"""Classic BPF programs so the kernel drops everything but ARP and NS/NA before Python sees it."""

from __future__ import annotations

import ctypes
import socket
import struct

SO_ATTACH_FILTER = 26
_LDH, _LDB, _JEQ, _RET = 0x28, 0x30, 0x15, 0x06
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


def run(program: list[Instruction], frame: bytes) -> int:
    """Interpret a program on a frame (for tests): the number of bytes it would accept."""
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == _LDH:
            if k + 2 > len(frame):
                return 0
            acc = struct.unpack_from("!H", frame, k)[0]
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
