"""Free heap pages go back at most every so often; trimming works (or says it cannot) on this C library."""

from __future__ import annotations

from ironlb.common import heap
from ironlb.common.heap import HeapTrimmer


def test_trims_once_per_interval() -> None:
    now, trims = [100.0], []
    trimmer = HeapTrimmer(30.0, clock=lambda: now[0], trim_now=lambda: trims.append(now[0]) is None)
    for t in (100.0, 110.0, 129.9, 130.0, 131.0, 159.0, 160.5):
        now[0] = t
        trimmer.maybe()
    assert trims == [130.0, 160.5] and trimmer.count == 2


def test_a_real_trim_returns_whether_it_could() -> None:
    blocks = [bytearray(4096) for _ in range(20_000)]  # some heap to hand back
    del blocks
    assert heap.trim() is (heap._TRIM is not None)
