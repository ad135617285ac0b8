"""The eBPF assembler's encoding (what the kernel says of its programs and maps: tests/privileged)."""

from __future__ import annotations

import struct

import pytest

from ironlb.speaker.fast.l2 import ebpf as bpf
from ironlb.speaker.fast.l2.ebpf import R0, R1, Label


def decode(code: bytes) -> list[tuple[int, int, int, int, int]]:
    """(code, dst, src, off, imm) per slot."""
    out = []
    for i in range(0, len(code), 8):
        op, regs, off, imm = struct.unpack_from("<BBhi", code, i)
        out.append((op, regs & 0xF, regs >> 4, off, imm))
    return out


def test_jumps_count_slots_to_their_label_and_a_map_load_takes_two() -> None:
    code = bpf.assemble([
        bpf.jump_if("==", R1, 0, "end"),     # 0: skips 1, 2-3 (wide), 4
        bpf.mov_imm(R0, 1),                  # 1
        bpf.load_map(R1, 7),                 # 2-3
        bpf.jump_if("!=", R0, 5, "end"),     # 4
        Label("end"),
        bpf.exit_(),                         # 5
    ])
    slots = decode(code)
    assert len(slots) == 6
    assert slots[0] == (0x15, R1, 0, 4, 0)
    assert slots[2] == (0x18, R1, 1, 0, 7) and slots[3] == (0, 0, 0, 0, 0)  # src 1: a map's descriptor
    assert slots[4] == (0x55, R0, 0, 0, 5)
    assert slots[5][0] == 0x95


def test_immediates_keep_their_low_32_bits() -> None:
    (slot,) = decode(bpf.assemble([bpf.store_imm(4, R1, 6, 0xFE000002)]))
    assert slot[4] & 0xFFFFFFFF == 0xFE000002


def test_a_compare_that_could_never_match_a_32_bit_load_is_refused() -> None:
    with pytest.raises(AssertionError):
        bpf.jump_if("==", R0, 0x80000000, "x")

