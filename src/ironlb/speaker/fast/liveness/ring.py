"""A ring of monitors: each node heartbeats only its ring neighbours, K on each side (pure).

Every node places every node on the ring by a stable hash of its name, so all nodes that agree on the Node
list and on who is down compute the same neighbours. A node's neighbours are also its watchers (the relation
is symmetric), so each node is watched by 2K others. Down nodes are skipped: the K nearest nodes up on each side
are taken, so a node next to a dead one is still watched by 2K. With at most 2K+1 nodes up, the K on each side
are every other node: the ring is the full mesh.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

K = 2  # on each side: every node is watched by four others


def position(name: str) -> int:
    """NAME's place on the ring: a stable hash, the same on every node and in every run."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


class Ring:
    """Every node of the Node list in ring order."""

    def __init__(self, names: Iterable[str], k: int = K) -> None:
        self.k = k
        self.order = sorted(set(names), key=lambda name: (position(name), name))
        self.index = {name: i for i, name in enumerate(self.order)}

    def __len__(self) -> int:
        return len(self.order)

    def neighbours(self, name: str, down: Callable[[str], bool] = lambda _: False) -> frozenset[str]:
        """The K nearest nodes up on each side of NAME (NAME itself may be down): the nodes it watches and the
        nodes that watch it. Every other node up when there are at most 2K+1."""
        start = self.index.get(name)
        if start is None:
            return frozenset()
        found: set[str] = set()
        for step in (1, -1):
            taken, at = 0, start
            for _ in range(len(self.order) - 1):
                at = (at + step) % len(self.order)
                other = self.order[at]
                if down(other):
                    continue
                found.add(other)
                taken += 1
                if taken == self.k:
                    break
        return frozenset(found)
