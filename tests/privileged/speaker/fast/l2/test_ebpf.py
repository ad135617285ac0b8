"""What the kernel says about programs and maps made with the eBPF assembler: its verifier's words, a map's answers."""

from __future__ import annotations

import pytest

from ironlb.speaker.fast.l2 import ebpf as bpf

pytestmark = pytest.mark.privileged


def test_a_refused_program_brings_the_verifiers_words() -> None:
    with pytest.raises(bpf.BpfError) as refused:
        bpf.load_program(bpf.assemble([bpf.exit_()]), "ilb_bad")  # r0 never set
    assert "R0" in refused.value.log and "loading program ilb_bad" in str(refused.value)


def test_a_map_holds_what_is_put_and_says_what_it_lacks() -> None:
    table = bpf.Map(bpf.MAP_HASH, 4, 1, 8, "ilb_test", bpf.F_NO_PREALLOC)
    try:
        table.put(b"\1\2\3\4", b"\1")
        assert table.get(b"\1\2\3\4") == b"\1"
        assert table.delete(b"\1\2\3\4") is True
        assert table.get(b"\1\2\3\4") is None and table.delete(b"\1\2\3\4") is False
    finally:
        table.close()
    table.close()  # twice is harmless


def test_a_slot_rewrites_its_keys_value_and_refuses_a_value_of_another_size() -> None:
    lease = bpf.Map(bpf.MAP_ARRAY, 4, 8, 1, "ilb_test_slot")
    try:
        slot = lease.slot(bytes(4))
        for value in (b"\1" * 8, b"\2" * 8):  # the same buffers, written again
            slot.put(value)
            assert lease.get(bytes(4)) == value
        with pytest.raises(ValueError):
            slot.put(b"\3" * 4)
        assert lease.get(bytes(4)) == b"\2" * 8
    finally:
        lease.close()
