"""A slim object kept as one flat record: its leaf values in a tuple, its layout shared with every object alike.

A slim Service (slim.py) is nine small dicts and lists: metadata, spec, its ports, status, the load balancer,
the ingress and its entries. Tens of thousands of Services have only a handful of layouts (which keys, how
many ports and IPs), so each Service keeps its leaves (strings, numbers, the shared parts slim.py made) in
one tuple, and one `Shape` per layout says where each leaf goes. Reading a section builds it afresh from
the leaves, equal to what was slimmed: readers see the same mappings and lists, and never share a mutable
part. Only plain dicts and lists are laid out; anything else (a `slim.Shared` part, a string, a tuple) is a
leaf and comes back as the very object it was.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from typing import Any

# Distinct layouts kept for sharing. Past this the memo starts again (odd input cannot grow it without
# bound); records made before keep their shapes.
SHAPE_LIMIT = 1024


class Shape:
    """The layout of a plain dict or list: its keys (a dict's) and each child's shape (None: a leaf)."""

    __slots__ = ("children", "flat", "keys", "placed", "size", "starts")

    def __init__(self, keys: tuple[Any, ...] | None, children: tuple[Shape | None, ...]) -> None:
        self.keys = keys  # None: a list
        self.children = children
        sizes = [1 if c is None else c.size for c in children]
        self.size = sum(sizes)  # leaves under it
        starts, at = [], 0
        for n in sizes:
            starts.append(at)
            at += n
        self.starts = tuple(starts)  # where each child's leaves begin
        self.placed = tuple(zip(children, starts, strict=True))
        self.flat = all(c is None for c in children)  # leaves only: built from one slice of them

    def build(self, leaves: tuple[Any, ...], at: int) -> Any:
        """The dict or list this shape lays out, from LEAVES starting at AT."""
        if self.flat:
            parts = leaves[at:at + self.size]
        else:
            parts = tuple([leaves[at + s] if c is None else c.build(leaves, at + s) for c, s in self.placed])
        return list(parts) if self.keys is None else dict(zip(self.keys, parts, strict=True))


_shapes: dict[Hashable, Shape] = {}


def _shape(keys: tuple[Any, ...] | None, children: tuple[Shape | None, ...]) -> Shape:
    """The one shared Shape of this layout (a new one when its keys cannot be hashed: odd input)."""
    memo_key = (keys, children)  # children by identity: each is the one shared shape of its own layout
    try:
        found = _shapes.get(memo_key)
    except TypeError:
        return Shape(keys, children)
    if found is None:
        if len(_shapes) >= SHAPE_LIMIT:
            _shapes.clear()
        found = _shapes[memo_key] = Shape(keys, children)
    return found


def _laid_out(value: Any) -> bool:
    return type(value) is dict or type(value) is list


def _flatten(value: Any, leaves: list[Any]) -> Shape:
    """VALUE's (a plain dict or list) shape; its leaves appended to LEAVES, in order."""
    items = value.values() if type(value) is dict else value
    children = []
    for item in items:
        if _laid_out(item):
            children.append(_flatten(item, leaves))
        else:
            children.append(None)
            leaves.append(item)
    return _shape(tuple(value) if type(value) is dict else None, tuple(children))


class Record(Mapping[str, Any]):
    """A slim object (a plain dict) as a flat record, read as the same dict: each section built when read."""

    __slots__ = ("_leaves", "_shape")

    def __init__(self, obj: Mapping[str, Any]) -> None:
        leaves: list[Any] = []
        self._shape = _flatten(dict(obj), leaves)
        self._leaves = tuple(leaves)

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Record:
        """OBJ as a record (itself when it is one)."""
        return obj if isinstance(obj, cls) else cls(obj)

    def __getitem__(self, key: str) -> Any:
        shape = self._shape
        try:
            i = shape.keys.index(key)  # type: ignore[union-attr]  # a record's shape is a dict's
        except ValueError:
            raise KeyError(key) from None
        child, at = shape.children[i], shape.starts[i]
        return self._leaves[at] if child is None else child.build(self._leaves, at)

    def __iter__(self) -> Iterator[str]:
        return iter(self._shape.keys or ())

    def __len__(self) -> int:
        return len(self._shape.keys or ())

    def __contains__(self, key: object) -> bool:
        try:
            return key in (self._shape.keys or ())
        except TypeError:
            return False

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record) and other._shape is self._shape:
            return self._leaves == other._leaves
        if type(other) is dict:
            return self.whole() == other
        return isinstance(other, Mapping) and self.whole() == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # equal to a dict, so unhashable like one

    def whole(self) -> dict[str, Any]:
        """The slim object as a plain dict (a fresh copy of its sections)."""
        return self._shape.build(self._leaves, 0)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Record({self.whole()!r})"

    def __reduce__(self) -> tuple[type, tuple[dict[str, Any]]]:
        return Record, (self.whole(),)
