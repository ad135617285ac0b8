"""Announcements by prefix, immutable and updated in O(changed): what lets one Service event cost one Service.

A Desired is a value: the driver keeps the one FRR holds and diffs the next against it, prefix by prefix. With
a plain tuple each new Desired costs a copy of every announcement and each diff a scan of them all. Here the
announcements sit in buckets by prefix; `updated` copies the bucket table and the buckets it changes, and
shares the rest with the old value, so both stay whole and a lookup by prefix reads one bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from ironlb.core.bgp.model import Announcement

BUCKETS = 256
Bucket = Mapping[str, tuple["Announcement", ...]]


class Announcements(Sequence["Announcement"]):
    """Announcements grouped by prefix; a Sequence, so a Desired may hold it where it holds a tuple."""

    __slots__ = ("_buckets", "_count")

    def __init__(self, buckets: tuple[Bucket, ...] | None = None, count: int = 0) -> None:
        self._buckets: tuple[Bucket, ...] = buckets or ({},) * BUCKETS
        self._count = count

    @staticmethod
    def of(announcements: Iterable[Announcement]) -> Announcements:
        """Announcements from any iterable of them."""
        by_prefix: dict[str, list[Announcement]] = {}
        for a in announcements:
            by_prefix.setdefault(a.prefix, []).append(a)
        return Announcements().updated({p: tuple(anns) for p, anns in by_prefix.items()})

    def updated(self, changes: Mapping[str, tuple[Announcement, ...]]) -> Announcements:
        """A new value with each prefix of CHANGES holding its announcements (an empty tuple: none)."""
        buckets = list(self._buckets)
        copied: set[int] = set()
        count = self._count
        for prefix, anns in changes.items():
            i = hash(prefix) % BUCKETS
            if i not in copied:
                buckets[i], copied = dict(buckets[i]), copied | {i}
            bucket = buckets[i]
            assert isinstance(bucket, dict)
            count -= len(bucket.pop(prefix, ()))
            if anns:
                bucket[prefix] = anns
                count += len(anns)
        return Announcements(tuple(buckets), count)

    def of_prefix(self, prefix: str) -> tuple[Announcement, ...]:
        """The announcements of PREFIX."""
        return self._buckets[hash(prefix) % BUCKETS].get(prefix, ())

    def __iter__(self) -> Iterator[Announcement]:
        for bucket in self._buckets:
            for anns in bucket.values():
                yield from anns

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Announcement: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Announcement]: ...

    def __getitem__(self, index: Any) -> Any:
        return tuple(self)[index]

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same announcements, whatever their order."""
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and sorted(map(repr, self)) == sorted(map(repr, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Announcements({list(self)!r})"


def announcements_of(announcements: Iterable[Announcement], prefixes: set[str] | None) -> Iterable[Announcement]:
    """The announcements of PREFIXES (None: all): by lookup when they are indexed, else by a scan."""
    if prefixes is None:
        return announcements
    if isinstance(announcements, Announcements):
        return (a for p in prefixes for a in announcements.of_prefix(p))
    return (a for a in announcements if a.prefix in prefixes)
