"""IPAddressPool as the core sees it, and overlap detection between pools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ironlb.core.addresses import IPV4, AddrRange, intersect
from ironlb.core.selectors import selector_matches


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
    # Off by default: a sharing key is any string, so without this one namespace could join another's IP.
    allow_shared_ip_across_namespaces: bool = False

    @property
    def has_service_allocation(self) -> bool:
        """True when the pool restricts which Services it serves."""
        return bool(self.namespaces or self.namespace_selectors or self.service_selectors)

    def refusal(self, namespace: str, namespace_labels: Mapping[str, str], key: str,
                labels: Mapping[str, str]) -> str | None:
        """Why serviceAllocation keeps this pool from the Service KEY (naming the rule), or None."""
        if self.namespaces and namespace not in self.namespaces:
            return (f"pool {self.name} serves only namespaces {', '.join(self.namespaces)} "
                    f"(serviceAllocation.namespaces), not {namespace}")
        if self.namespace_selectors and not any(selector_matches(s, namespace_labels)
                                                for s in self.namespace_selectors):
            return (f"pool {self.name} serves only namespaces matching serviceAllocation.namespaceSelectors, "
                    f"and namespace {namespace} does not match")
        if self.service_selectors and not any(selector_matches(s, labels) for s in self.service_selectors):
            return (f"pool {self.name} serves only Services matching serviceAllocation.serviceSelectors, "
                    f"and {key} does not match")
        return None

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


def usable_intervals(pool: Pool, family: str) -> list[tuple[int, int]]:
    """The (first, last) integer runs of FAMILY the pool hands out (.0/.255 carved out if asked)."""
    out: list[tuple[int, int]] = []
    for r in pool.ranges:
        if r.family != family:
            continue
        if not (pool.avoid_buggy_ips and family == IPV4):
            out.append((r.first, r.last))
            continue
        start = r.first
        while start <= r.last:  # one step per /24: carve out .0 and .255
            block_end = min(r.last, start | 0xFF)
            lo, hi = max(start, (start & ~0xFF) + 1), min(block_end, (start & ~0xFF) + 254)
            if lo <= hi:
                out.append((lo, hi))
            start = block_end + 1
    return out
