"""IPAddressPool as the core sees it, and overlap detection between pools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ironlb.core.addresses import AddrRange, intersect


@dataclass(frozen=True)
class Pool:
    """A pool of addresses and the rules for handing them out."""

    name: str
    ranges: tuple[AddrRange, ...]
    auto_assign: bool = True
    avoid_buggy_ips: bool = False
    priority: int | None = None
    namespaces: tuple[str, ...] = ()
    namespace_selectors: tuple[Mapping[str, Any], ...] = ()
    service_selectors: tuple[Mapping[str, Any], ...] = ()
    forwarding: str = "KubeProxy"
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_service_allocation(self) -> bool:
        """True when the pool restricts which Services it serves."""
        return bool(self.namespaces or self.namespace_selectors or self.service_selectors)

    def contains(self, family: str, value: int) -> bool:
        """True if the address is inside one of the pool's ranges."""
        return any(r.family == family and r.first <= value <= r.last for r in self.ranges)


@dataclass(frozen=True)
class Overlap:
    """Part of one pool's addresses that another pool also covers."""

    pool: str
    other: str
    shared: AddrRange


def find_overlaps(pools: Sequence[Pool]) -> list[Overlap]:
    """Every overlapping pair, reported from both sides (pool count is small: pairs are fine)."""
    found: list[Overlap] = []
    for i, a in enumerate(pools):
        for b in pools[i + 1:]:
            for ra in a.ranges:
                for rb in b.ranges:
                    shared = intersect(ra, rb)
                    if shared:
                        found.append(Overlap(a.name, b.name, shared))
                        found.append(Overlap(b.name, a.name, shared))
    return found
