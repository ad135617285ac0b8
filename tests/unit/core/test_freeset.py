"""FreeSet: free integers as sorted disjoint intervals."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ironlb.core.intervals import FreeSet


def runs(values: set[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers, lowest first (the reference model)."""
    out: list[tuple[int, int]] = []
    for v in sorted(values):
        if out and out[-1][1] == v - 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def test_constructor_sorts_and_merges_touching_and_overlapping_intervals() -> None:
    """Unsorted, overlapping and touching input becomes one interval with the right count."""
    fs = FreeSet([(8, 12), (0, 3), (4, 4), (5, 9)])
    assert fs.intervals == [(0, 12)] and fs.count == 13
    gap = FreeSet([(10, 19), (0, 4)])
    assert gap.intervals == [(0, 4), (10, 19)] and gap.count == 15


def test_empty() -> None:
    """An empty set has nothing to give."""
    fs = FreeSet()
    assert fs.count == 0 and fs.intervals == []
    assert fs.lowest() is None and fs.take_lowest() is None
    assert not fs.take(0) and 0 not in fs


def test_take_splits_and_shrinks() -> None:
    """Taking from the middle splits; from an edge shrinks; taking twice or outside fails."""
    fs = FreeSet([(0, 9)])
    assert fs.take(5) and fs.intervals == [(0, 4), (6, 9)] and fs.count == 9
    assert not fs.take(5) and fs.count == 9
    assert not fs.take(100) and not fs.take(-1)
    assert fs.take(0) and fs.intervals == [(1, 4), (6, 9)]
    assert fs.take(4) and fs.intervals == [(1, 3), (6, 9)]
    assert fs.take(9) and fs.intervals == [(1, 3), (6, 8)]
    assert fs.count == 6 and 5 not in fs and 6 in fs and 1 in fs and 0 not in fs


def test_take_a_single_value_interval_removes_it() -> None:
    """A one-value interval disappears when taken."""
    fs = FreeSet([(1, 1), (3, 3), (5, 5)])
    assert fs.take(3) and fs.intervals == [(1, 1), (5, 5)] and fs.count == 2


def test_release_merges_left_right_and_both() -> None:
    """Released values join their neighbours; releasing a free value fails."""
    fs = FreeSet([(1, 3), (6, 9)])
    assert fs.release(4) and fs.intervals == [(1, 4), (6, 9)]
    assert fs.release(5) and fs.intervals == [(1, 9)]
    assert not fs.release(5) and fs.count == 9
    assert fs.release(0) and fs.intervals == [(0, 9)]
    assert fs.release(20) and fs.intervals == [(0, 9), (20, 20)]
    assert fs.release(18) and fs.intervals == [(0, 9), (18, 18), (20, 20)]
    assert fs.release(19) and fs.intervals == [(0, 9), (18, 20)] and fs.count == 13


def test_take_lowest_walks_upwards_and_sees_releases() -> None:
    """take_lowest returns values in order and prefers a released lower value."""
    fs = FreeSet([(10, 12), (20, 20)])
    assert [fs.take_lowest() for _ in range(3)] == [10, 11, 12]
    fs.release(11)
    assert fs.lowest() == 11 and fs.take_lowest() == 11
    assert fs.take_lowest() == 20 and fs.take_lowest() is None and fs.count == 0


def test_big_integers_are_exact() -> None:
    """A 2**64 interval counts exactly and splits without iterating."""
    fs = FreeSet([(2**64, 2**65 - 1)])
    assert fs.count == 2**64
    middle = 2**64 + 2**63
    assert fs.take(middle) and fs.count == 2**64 - 1
    assert fs.intervals == [(2**64, middle - 1), (middle + 1, 2**65 - 1)]
    assert fs.release(middle) and fs.intervals == [(2**64, 2**65 - 1)]


ops = st.lists(st.tuples(st.sampled_from(["take", "release", "lowest"]), st.integers(0, 40)), max_size=80)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 10)), max_size=6), ops)
def test_matches_a_set_model(starts: list[tuple[int, int]], history: list[tuple[str, int]]) -> None:
    """Any take/release/take_lowest sequence behaves like a plain set of integers."""
    model = {v for a, n in starts for v in range(a, a + n + 1)}
    fs = FreeSet((a, a + n) for a, n in starts)
    for op, value in history:
        if op == "take":
            assert fs.take(value) is (value in model)
            model.discard(value)
        elif op == "release":
            assert fs.release(value) is (value not in model)
            model.add(value)
        else:
            assert fs.take_lowest() == (min(model) if model else None)
            model.discard(min(model, default=None))  # type: ignore[arg-type]
        assert fs.intervals == runs(model) and fs.count == len(model)
        assert all((v in fs) is (v in model) for v in range(-1, 43))
