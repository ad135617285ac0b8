"""IPAddressPool as the core sees it, and overlap detection between pools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ironlb.core.addresses import IPV4, AddrRange, intersect, ip_to_int, is_buggy, parse_ranges
from ironlb.core.selectors import selector_matches, validate_selector


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

    def holds(self, family: str, value: int) -> bool:
        """True if the pool may hand the address out: inside its ranges, and not a .0/.255 it avoids."""
        return self.contains(family, value) and not (self.avoid_buggy_ips and is_buggy(family, value))

    def overlaps(self, other: Pool) -> bool:
        """True if some address is in both pools' ranges."""
        return any(intersect(a, b) for a in self.ranges for b in other.ranges)


def pool_from_spec(name: str, spec: Mapping[str, Any], labels: Mapping[str, str]) -> Pool:
    """An IPAddressPool's spec as a Pool (raises AddressSpecError, SelectorError, ValueError or TypeError)."""
    ranges = parse_ranges(spec.get("addresses") or [])
    alloc = spec.get("serviceAllocation") or {}
    for selector in [*(alloc.get("namespaceSelectors") or []), *(alloc.get("serviceSelectors") or [])]:
        validate_selector(selector)
    return Pool(
        name=name, ranges=tuple(ranges), auto_assign=bool(spec.get("autoAssign", True)),
        avoid_buggy_ips=bool(spec.get("avoidBuggyIPs", False)), priority=alloc.get("priority"),
        namespaces=tuple(alloc.get("namespaces") or ()),
        namespace_selectors=tuple(alloc.get("namespaceSelectors") or ()),
        service_selectors=tuple(alloc.get("serviceSelectors") or ()),
        forwarding=spec.get("forwarding") or "KubeProxy", labels=dict(labels),
        allow_shared_ip_across_namespaces=bool(spec.get("allowSharedIPAcrossNamespaces", False)),
    )


def pool_of_ip(ip: str, hint: str | None, pools: Mapping[str, Pool]) -> str | None:
    """The pool IP belongs to: HINT if it holds IP, else the first pool by name that does (None: no pool).

    The operator's rule when it re-reads an assignment (Allocator.restore): the hint, an annotation anyone
    who may edit the Service can change, only breaks a tie between pools whose ranges hold the address.
    """
    try:
        family, value = ip_to_int(ip)
    except ValueError:
        return None
    if hint is not None and hint in pools and pools[hint].holds(family, value):
        return hint
    return min((name for name, pool in pools.items() if pool.holds(family, value)), default=None)


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
