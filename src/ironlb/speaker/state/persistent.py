"""Copy-on-write maps and sets: a new version shares every chunk it did not touch with the old one.

The ranking table is published to the fast plane by reference and never mutated; these let the
control plane make the next version in O(what changed), not O(all Services), and let the fast
plane find what changed between two versions by chunk identity.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
CHUNKS = 512  # 50,000 IPs -> ~100 per chunk: one change copies ~100 slots and a 512-slot tuple
_EMPTY: dict = {}


class _Chunked(Generic[K]):
    """What maps and sets share: CHUNKS containers by key hash, and the total length."""

    __slots__ = ("_chunks", "_len")
    _chunks: tuple[Any, ...]
    _len: int

    def __contains__(self, key: object) -> bool:
        return key in self._chunks[hash(key) % CHUNKS]

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[K]:
        for chunk in self._chunks:
            yield from chunk


class PMap(_Chunked[K], Generic[K, V]):
    """An immutable map split into CHUNKS dicts by key hash; `evolve` copies only the touched chunks."""

    __slots__ = ()

    def __init__(self, chunks: tuple[Mapping[K, V], ...] | None = None, length: int = 0) -> None:
        self._chunks: tuple[Mapping[K, V], ...] = chunks or (_EMPTY,) * CHUNKS
        self._len = length

    @staticmethod
    def of(items: Mapping[K, V]) -> PMap[K, V]:
        """A map holding ITEMS."""
        return PMap[K, V]().evolve(items, ())

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value for KEY, or DEFAULT."""
        return self._chunks[hash(key) % CHUNKS].get(key, default)

    def __getitem__(self, key: K) -> V:
        return self._chunks[hash(key) % CHUNKS][key]

    def items(self) -> Iterator[tuple[K, V]]:
        """Every (key, value)."""
        for chunk in self._chunks:
            yield from chunk.items()

    def evolve(self, put: Mapping[K, V], drop: Iterable[K]) -> PMap[K, V]:
        """A new map with PUT set and DROP removed; self is unchanged."""
        touched: dict[int, dict[K, V]] = {}
        length = self._len
        for key in drop:
            i = hash(key) % CHUNKS
            if key in self._chunks[i] or key in touched.get(i, _EMPTY):
                chunk = touched[i] if i in touched else touched.setdefault(i, dict(self._chunks[i]))
                if key in chunk:
                    del chunk[key]
                    length -= 1
        for key, value in put.items():
            i = hash(key) % CHUNKS
            chunk = touched[i] if i in touched else touched.setdefault(i, dict(self._chunks[i]))
            length += key not in chunk
            chunk[key] = value
        if not touched:
            return self
        chunks = list(self._chunks)
        for i, chunk in touched.items():
            chunks[i] = chunk if chunk else _EMPTY
        return PMap(tuple(chunks), length)

    def changed_keys(self, older: PMap[K, V]) -> set[K]:
        """Keys whose value (by identity) differs from OLDER: only chunks not shared are looked at."""
        out: set[K] = set()
        for new, old in zip(self._chunks, older._chunks, strict=True):
            if new is old:
                continue
            out.update(k for k, v in new.items() if old.get(k, _MISSING) is not v)
            out.update(k for k in old if k not in new)
        return out

    def to_dict(self) -> dict[K, V]:
        """A plain dict copy (tests, debugging)."""
        return dict(self.items())


class _Missing:
    pass


_MISSING = _Missing()


class PSet(_Chunked[K]):
    """An immutable set split into CHUNKS frozensets by hash; `evolve` copies only the touched chunks."""

    __slots__ = ()

    def __init__(self, chunks: tuple[frozenset[K], ...] | None = None, length: int = 0) -> None:
        self._chunks: tuple[frozenset[K], ...] = chunks or (frozenset(),) * CHUNKS
        self._len = length

    def evolve(self, add: Iterable[K], remove: Iterable[K]) -> PSet[K]:
        """A new set with ADD added and REMOVE removed; self is unchanged."""
        touched: dict[int, set[K]] = {}
        for key in remove:
            i = hash(key) % CHUNKS
            if i in touched:
                touched[i].discard(key)
            elif key in self._chunks[i]:
                touched[i] = set(self._chunks[i]) - {key}
        for key in add:
            i = hash(key) % CHUNKS
            if i not in touched:
                touched[i] = set(self._chunks[i])
            touched[i].add(key)
        if not touched:
            return self
        chunks = list(self._chunks)
        length = self._len
        for i, chunk in touched.items():
            length += len(chunk) - len(chunks[i])
            chunks[i] = frozenset(chunk)
        return PSet(tuple(chunks), length)


EMPTY_SET: PSet = PSet()
