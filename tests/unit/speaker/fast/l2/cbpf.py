"""A classic BPF interpreter for the opcodes IronLB's filters use: tests run a program on a frame without a socket."""

from __future__ import annotations

import struct

from ironlb.speaker.fast.l2.bpf import AND, JA, JEQ, LDB, LDH, LDW, PKTTYPE, RET, SKF_NET_OFF, Instruction


def run(program: list[Instruction], frame: bytes, network: bytes = b"", pkttype: int = 0) -> int:
    """Interpret PROGRAM on a frame received as PKTTYPE: the number of bytes the kernel would accept.
    Loads at SKF_NET_OFF and beyond read NETWORK (for a UDP socket, the IP header; FRAME is the datagram)."""
    acc, pc = 0, 0
    sizes = {LDH: (2, "!H"), LDW: (4, "!I"), LDB: (1, "!B")}
    while True:
        code, jt, jf, k = program[pc]
        if code == LDW and k == PKTTYPE:
            acc = pkttype
        elif code in sizes:
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
