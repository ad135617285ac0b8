"""Allocator scenario tables: steps run in order against one allocator (as MetalLB's allocator tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ironlb.core.addresses import parse_ranges
from ironlb.core.allocator import Allocator, Reason, ServiceRequest
from ironlb.core.pools import Pool


def pool(name: str, *addrs: str, **kw: object) -> Pool:
    """A core Pool."""
    return Pool(name=name, ranges=tuple(parse_ranges(addrs)), **kw)  # type: ignore[arg-type]


@dataclass
class Step:
    """One step: assign (svc given), release (release=key) or set pools (pools given); then expectations."""

    svc: ServiceRequest | None = None
    release: str | None = None
    pools: list[Pool] | None = None
    ips: tuple[str, ...] | None = None
    reason: Reason | None = None
    uncovered: list[str] = field(default_factory=list)


def req(key: str, **kw: object) -> ServiceRequest:
    """A ServiceRequest."""
    return ServiceRequest(key=key, **kw)  # type: ignore[arg-type]


SCENARIOS: dict[str, tuple[list[Pool], list[Step]]] = {
    "lowest free, idempotent, release returns it": ([pool("p", "203.0.113.0/30")], [
        Step(req("a"), ips=("203.0.113.0",), reason=Reason.ASSIGNED),
        Step(req("b"), ips=("203.0.113.1",)),
        Step(req("a"), ips=("203.0.113.0",), reason=Reason.UNCHANGED),
        Step(release="a"),
        Step(req("c"), ips=("203.0.113.0",)),
    ]),
    "avoid buggy IPs across /24 boundaries": ([pool("p", "198.19.0.254-198.19.1.1", avoid_buggy_ips=True)], [
        Step(req("a"), ips=("198.19.0.254",)),
        Step(req("b"), ips=("198.19.1.1",)),
        Step(req("c"), reason=Reason.POOL_EXHAUSTED),
    ]),
    "requested IPs: in pool, in use, outside any pool, wrong family": ([pool("p", "203.0.113.0/29")], [
        Step(req("a", requested_ips=["203.0.113.5"]), ips=("203.0.113.5",)),
        Step(req("b", requested_ips=["203.0.113.5"]), reason=Reason.REQUESTED_IP_IN_USE),
        Step(req("c", requested_ips=["192.0.2.1"]), reason=Reason.REQUESTED_IP_NOT_IN_POOL),
        Step(req("d", requested_ips=["2001:db8::1"]), reason=Reason.FAMILY_UNAVAILABLE),
        Step(req("e"), ips=("203.0.113.0",)),
    ]),
    "requested pool works with autoAssign false; unknown pool fails": (
        [pool("auto", "203.0.113.0/30"), pool("manual", "198.51.100.0/30", auto_assign=False)], [
            Step(req("a"), ips=("203.0.113.0",)),
            Step(req("b", requested_pool="manual"), ips=("198.51.100.0",)),
            Step(req("c", requested_pool="nope"), reason=Reason.POOL_NOT_FOUND),
        ]),
    "selected pools by priority before general pools": (
        [pool("general", "203.0.113.0/30"),
         pool("team-low", "198.51.100.0/30", namespaces=("team",), priority=5),
         pool("team-high", "198.51.100.8/30", namespaces=("team",), priority=1),
         pool("labelled", "198.51.100.16/30", service_selectors=({"matchLabels": {"tier": "edge"}},))], [
            Step(req("team/a", namespace="team"), ips=("198.51.100.8",)),
            Step(req("other/a", namespace="other"), ips=("203.0.113.0",)),
            Step(req("other/b", namespace="other", labels={"tier": "edge"}), ips=("198.51.100.16",)),
        ]),
    "dual-stack policies": ([pool("p", "203.0.113.0/31", "2001:db8:ffff::/127")], [
        Step(req("req", ip_families=["IPv6", "IPv4"], ip_family_policy="RequireDualStack"),
             ips=("2001:db8:ffff::", "203.0.113.0")),
        Step(req("pref", ip_families=["IPv4"], ip_family_policy="PreferDualStack"),
             ips=("203.0.113.1", "2001:db8:ffff::1")),
        Step(req("req2", ip_families=["IPv4", "IPv6"], ip_family_policy="RequireDualStack"),
             reason=Reason.POOL_EXHAUSTED),
        Step(release="req"),
        Step(req("single6", ip_families=["IPv6"]), ips=("2001:db8:ffff::",)),
    ]),
    "sharing: same key and disjoint ports share; collisions and other keys do not": (
        [pool("p", "203.0.113.0/31")], [
            Step(req("a", sharing_key="k", ports=(("TCP", 80),)), ips=("203.0.113.0",)),
            Step(req("b", sharing_key="k", ports=(("TCP", 443),)), ips=("203.0.113.0",)),
            Step(req("c", sharing_key="k", ports=(("TCP", 80),)), ips=("203.0.113.1",)),
            Step(req("d", sharing_key="other", ports=(("UDP", 53),)), reason=Reason.POOL_EXHAUSTED),
            Step(req("e", sharing_key="k", ports=(("TCP", 8080),), requested_ips=["203.0.113.0"],
                     traffic_policy="Local"), reason=Reason.SHARING_INCOMPATIBLE),
        ]),
    "a changed request keeps the old IP until the new one is granted": (
        [pool("p", "203.0.113.0/30")], [
            Step(req("a"), ips=("203.0.113.0",)),
            Step(req("b", requested_ips=["203.0.113.3"]), ips=("203.0.113.3",)),
            Step(req("a", requested_ips=["203.0.113.3"]), reason=Reason.REQUESTED_IP_IN_USE),
            Step(req("c"), ips=("203.0.113.1",)),  # a still holds .0
            Step(req("a", requested_ips=["203.0.113.2"]), ips=("203.0.113.2",)),
            Step(req("d"), ips=("203.0.113.0",)),  # now released
        ]),
    "pool shrink releases exactly the uncovered Services": ([pool("p", "203.0.113.0/30")], [
        Step(req("a"), ips=("203.0.113.0",)),
        Step(req("b"), ips=("203.0.113.1",)),
        Step(pools=[pool("p", "203.0.113.1-203.0.113.3")], uncovered=["a"]),
        Step(req("b"), ips=("203.0.113.1",), reason=Reason.UNCHANGED),
        Step(req("a"), ips=("203.0.113.2",)),
    ]),
    "overlapping pools never hand out one IP twice": (
        [pool("a-pool", "203.0.113.0/30", auto_assign=False), pool("b-pool", "203.0.113.2/31", auto_assign=False)], [
            Step(req("x", requested_ips=["203.0.113.2"]), ips=("203.0.113.2",)),
            Step(req("y", requested_pool="b-pool"), ips=("203.0.113.3",)),
            Step(req("z", requested_pool="b-pool"), reason=Reason.POOL_EXHAUSTED),
        ]),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(name: str) -> None:
    pools, steps = SCENARIOS[name]
    alloc = Allocator()
    alloc.set_pools(pools)
    for i, step in enumerate(steps):
        where = f"{name}: step {i}"
        if step.pools is not None:
            assert alloc.set_pools(step.pools) == step.uncovered, where
            continue
        if step.release:
            alloc.release(step.release)
            continue
        assert step.svc is not None
        result = alloc.assign(step.svc)
        if step.reason is not None:
            assert result.reason is step.reason, f"{where}: {result}"
        if step.ips is not None:
            assert result.ips == step.ips, f"{where}: {result}"
        if not result.ok:
            assert result.ips == () and result.message, where


def test_ipv6_slash_64_counts_are_exact_and_instant() -> None:
    alloc = Allocator()
    alloc.set_pools([pool("v6", "2001:db8:ffff::/64")])
    assert alloc.assign(req("a", ip_families=["IPv6"])).ips == ("2001:db8:ffff::",)
    size, assigned, available = alloc.pool_stats("v6")["IPv6"]
    assert (size, assigned, available) == (2**64, 1, 2**64 - 1)


def test_restore_keeps_existing_and_refuses_conflicts() -> None:
    alloc = Allocator()
    alloc.set_pools([pool("p", "203.0.113.0/29")])
    assert alloc.restore(req("a"), ["203.0.113.6"], "p").reason is Reason.RESTORED
    assert alloc.restore(req("b"), ["203.0.113.6"], "p").reason is Reason.SHARING_INCOMPATIBLE
    assert alloc.restore(req("c"), ["192.0.2.1"], "p").reason is Reason.REQUESTED_IP_NOT_IN_POOL
    assert alloc.assign(req("d")).ips == ("203.0.113.0",)
    assert alloc.assign(req("a")).reason is Reason.UNCHANGED
