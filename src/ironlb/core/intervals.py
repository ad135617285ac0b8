"""A set of free addresses kept as sorted disjoint intervals: cost depends on fragmentation, not fill."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable


class FreeSet:
    """Free integers as sorted, disjoint, non-touching [start, end] intervals."""

    def __init__(self, intervals: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self.count = 0
        for start, end in sorted(intervals):
            self._append(start, end)

    def _append(self, start: int, end: int) -> None:
        if self._ends and start <= self._ends[-1] + 1:
            self.count += max(0, end - self._ends[-1])
            self._ends[-1] = max(self._ends[-1], end)
        else:
            self._starts.append(start)
            self._ends.append(end)
            self.count += end - start + 1

    @property
    def intervals(self) -> list[tuple[int, int]]:
        """The free intervals, lowest first."""
        return list(zip(self._starts, self._ends, strict=True))

    def lowest(self) -> int | None:
        """The lowest free value, or None when nothing is free."""
        return self._starts[0] if self._starts else None

    def take_lowest(self) -> int | None:
        """Remove and return the lowest free value (O(1) amortised)."""
        if not self._starts:
            return None
        value = self._starts[0]
        self._remove_at(0, value)
        return value

    def __contains__(self, value: int) -> bool:
        i = bisect_right(self._starts, value) - 1
        return i >= 0 and value <= self._ends[i]

    def take(self, value: int) -> bool:
        """Remove VALUE if free; False if it was not free."""
        i = bisect_right(self._starts, value) - 1
        if i < 0 or value > self._ends[i]:
            return False
        self._remove_at(i, value)
        return True

    def _remove_at(self, i: int, value: int) -> None:
        start, end = self._starts[i], self._ends[i]
        self.count -= 1
        if start == end:
            del self._starts[i]
            del self._ends[i]
        elif value == start:
            self._starts[i] = value + 1
        elif value == end:
            self._ends[i] = value - 1
        else:  # split in two
            self._ends[i] = value - 1
            self._starts.insert(i + 1, value + 1)
            self._ends.insert(i + 1, end)

    def release(self, value: int) -> bool:
        """Add VALUE back; False if it was already free."""
        i = bisect_right(self._starts, value) - 1
        if i >= 0 and value <= self._ends[i]:
            return False
        joins_left = i >= 0 and self._ends[i] == value - 1
        joins_right = i + 1 < len(self._starts) and self._starts[i + 1] == value + 1
        if joins_left and joins_right:
            self._ends[i] = self._ends[i + 1]
            del self._starts[i + 1]
            del self._ends[i + 1]
        elif joins_left:
            self._ends[i] = value
        elif joins_right:
            self._starts[i + 1] = value
        else:
            self._starts.insert(i + 1, value)
            self._ends.insert(i + 1, value)
        self.count += 1
        return True
