"""Which node announces an IP: the smallest sha256(node + "#" + ip) among eligible nodes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def score(node: str, ip: str) -> bytes:
    """The node's election score for an IP (smaller wins)."""
    return hashlib.sha256(f"{node}#{ip}".encode()).digest()


def elect(ip: str, eligible_nodes: Iterable[str]) -> str | None:
    """The announcing node for IP, or None when no node is eligible."""
    return min(eligible_nodes, key=lambda node: score(node, ip), default=None)

