"""Which node announces an IP: the smallest sha256(node + "#" + ip) among eligible nodes, unless a node that
announces it now is kept (the Local policy's incumbent: docs/design.md, "Election and the ranking table")."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def score(node: str, ip: str) -> bytes:
    """The node's election score for an IP (smaller wins)."""
    return hashlib.sha256(f"{node}#{ip}".encode()).digest()


def order(ip: str, nodes: Iterable[str], first: str | None = None) -> list[str]:
    """NODES in election order for IP: FIRST ahead of all if it is among them, the rest by score."""
    ranked = sorted(nodes, key=lambda node: score(node, ip))
    if first is not None and first in ranked:
        ranked.remove(first)
        ranked.insert(0, first)
    return ranked


def elect(ip: str, eligible_nodes: Iterable[str], first: str | None = None) -> str | None:
    """The announcing node for IP (FIRST if eligible), or None when no node is eligible."""
    nodes = list(eligible_nodes)
    if first is not None and first in nodes:
        return first
    return min(nodes, key=lambda node: score(node, ip), default=None)
