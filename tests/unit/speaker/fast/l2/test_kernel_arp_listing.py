"""kernel_arp.listing.c says what kernel_arp.program() assembles: the same labels in the same order, and under each
label as many instructions as the listing's statements add up to."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ironlb.speaker.fast.l2 import ebpf, kernel_arp
from ironlb.speaker.fast.l2.ebpf import Insn, Label

LISTING = Path(kernel_arp.__file__).with_name("kernel_arp.listing.c")
PROGRAM = kernel_arp.program(bytes.fromhex("020000000001"), 3, 4, 5, 6)  # descriptors: only their places matter
_LABEL = re.compile(r"^(\w+):")  # a label starts its line; nothing else in the listing does
_COUNT = re.compile(r"/\* \[(\d+)\]")  # a statement's instruction count opens its comment


def listing_blocks(text: str) -> list[tuple[str, int]]:
    """(label, the instructions its statements add up to), in the listing's order."""
    blocks: list[tuple[str, int]] = []
    for line in text.splitlines():
        if label := _LABEL.match(line):
            blocks.append((label.group(1), 0))
        for count in _COUNT.findall(line):
            assert blocks, f"a counted statement before the first label: {line}"
            name, total = blocks[-1]
            blocks[-1] = (name, total + int(count))
    return blocks


def program_blocks(program: Sequence[Insn | Label]) -> list[tuple[str, int]]:
    """(label, the instructions up to the next label), in the program's order."""
    blocks: list[tuple[str, int]] = []
    for item in program:
        if isinstance(item, Label):
            blocks.append((item.name, 0))
            continue
        assert blocks, "an instruction before the first label"
        name, total = blocks[-1]
        blocks[-1] = (name, total + 1)
    return blocks


def test_the_listing_has_the_programs_labels_and_instructions() -> None:
    assert listing_blocks(LISTING.read_text()) == program_blocks(PROGRAM)


def test_an_instruction_added_to_any_block_alone_breaks_the_agreement() -> None:
    listing = listing_blocks(LISTING.read_text())
    labels = [at for at, item in enumerate(PROGRAM) if isinstance(item, Label)]
    assert len(labels) == len(listing) > 1
    for at in labels:
        grown = [*PROGRAM[:at + 1], ebpf.exit_(), *PROGRAM[at + 1:]]
        assert program_blocks(grown) != listing, PROGRAM[at]
