"""Node names as bit positions, so a set of nodes is one int (a mask). Pure, no I/O.

The control plane assigns the bits (`assign`, on first sight of a name) and sends each new name to the
fast plane before any claim that uses its bit; the fast plane appends them in the same order (`extend`).
The index is append-only for the life of the process: a name keeps its bit and a bit is never reused,
so a mask sent once means the same nodes for as long as both processes live.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import reduce
from operator import or_


class NodeIndex:
    """Node name -> bit position, append-only."""

    def __init__(self) -> None:
        self._bits: dict[str, int] = {}  # name -> 1 << its position (the mask of that node alone)
        self._names: list[str] = []  # position -> name

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._bits

    def names_from(self, start: int) -> list[str]:
        """The names at positions START and after, in order (what the other process lacks)."""
        return self._names[start:]

    def bit(self, name: str) -> int:
        """NAME's position (it gets the next one if it has none yet)."""
        if name not in self._bits:
            self._bits[name] = 1 << len(self._names)
            self._names.append(name)
        return self._bits[name].bit_length() - 1

    def assign(self, names: Iterable[str]) -> int:
        """The mask of NAMES, giving each name seen for the first time the next bit."""
        names = tuple(names)
        try:  # the common case, every name known: one pass in C
            return reduce(or_, map(self._bits.__getitem__, names), 0)
        except KeyError:
            for name in names:
                self.bit(name)
            return reduce(or_, map(self._bits.__getitem__, names), 0)

    def mask(self, names: Iterable[str]) -> int:
        """The mask of the NAMES this index knows (a name without a bit is in no claim: it adds nothing)."""
        bits = self._bits
        return reduce(or_, (bits[name] for name in names if name in bits), 0)

    def names(self, mask: int) -> frozenset[str]:
        """The names whose bits are set in MASK."""
        out = []
        while mask:
            low = mask & -mask
            out.append(self._names[low.bit_length() - 1])
            mask ^= low
        return frozenset(out)

    def extend(self, start: int, names: Sequence[str]) -> None:
        """Append NAMES at position START, as the other process assigned them (START must be our length)."""
        if start != len(self._names):
            raise ValueError(f"node index out of step: names from bit {start}, {len(self._names)} known")
        for name in names:
            if name in self._bits:
                raise ValueError(f"node {name!r} already has bit {self.bit(name)}")
            self.bit(name)
