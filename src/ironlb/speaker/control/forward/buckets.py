"""Hash buckets of a forwarded VIP, each owned by one healthy node (rendezvous, like the election)."""

from __future__ import annotations

from collections.abc import Iterable

from ironlb.core.election import elect


def buckets(key: str, nodes: Iterable[str], count: int) -> tuple[str, ...]:
    """COUNT hash buckets of KEY, each owned by the node elected for it (empty without nodes).

    Rendezvous hashing per bucket: when a node leaves, only its own buckets move, so flows hashed
    to the other nodes keep their node.
    """
    candidates = sorted(set(nodes))
    if not candidates:
        return ()
    return tuple(elect(f"{key}/{bucket}", candidates) or candidates[0] for bucket in range(count))
