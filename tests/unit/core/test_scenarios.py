"""Allocator scenario tables: each scenario is a list of steps run in order against one Allocator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ironlb.core.addresses import parse_ranges
from ironlb.core.allocator import Allocator, Reason, ServiceRequest
from ironlb.core.pools import Pool

V4, V6 = "IPv4", "IPv6"
OK = (Reason.ASSIGNED, Reason.UNCHANGED, Reason.RESTORED)


def pool(name: str, *addresses: str, **kw: Any) -> Pool:
    """A core Pool from address specs."""
    return Pool(name=name, ranges=tuple(parse_ranges(addresses)), **kw)


@dataclass
class Step:
    """One action against the allocator and what must come out of it."""

    op: str
    req: ServiceRequest | None = None
    key: str | None = None
    pools: list[Pool] | None = None
    restore_ips: list[str] = field(default_factory=list)
    hint: str | None = None
    ips: tuple[str, ...] | None = None
    reason: Reason | None = None
    pool: str | None = None
    uncovered: list[str] | None = None
    holds: dict[str, tuple[tuple[str, ...], str] | None] | None = None
    stats: tuple[str, str, tuple[int, int, int]] | None = None


def assign(key: str, ips: tuple[str, ...] | None = None, reason: Reason | None = None,
           pool: str | None = None, **req: Any) -> Step:
    """Assign; expect IPs (and ASSIGNED unless another reason is given), optionally the pool."""
    if ips is not None and reason is None:
        reason = Reason.ASSIGNED
    return Step("assign", req=ServiceRequest(key=key, **req), ips=ips, reason=reason, pool=pool)


def release(key: str, ips: tuple[str, ...] = ()) -> Step:
    """Release a Service; expect exactly these IPs back."""
    return Step("release", key=key, ips=ips)


def set_pools(pools: list[Pool], uncovered: list[str]) -> Step:
    """Replace the pools; expect exactly these Services to lose their IPs."""
    return Step("pools", pools=pools, uncovered=uncovered)


def restore(key: str, ips: list[str], hint: str | None = None, reason: Reason = Reason.RESTORED,
            pool: str | None = None, **req: Any) -> Step:
    """Re-register an existing assignment."""
    return Step("restore", req=ServiceRequest(key=key, **req), restore_ips=ips, hint=hint, reason=reason,
                pool=pool)


def holds(**expected: tuple[tuple[str, ...], str] | None) -> Step:
    """Check what Services hold (None: nothing)."""
    return Step("holds", holds=expected)


def stats(pool_name: str, family: str, size: int, assigned: int, available: int) -> Step:
    """Check a pool's (size, assigned, available) for a family."""
    return Step("stats", stats=(pool_name, family, (size, assigned, available)))


TCP80, TCP443, UDP53 = (("TCP", 80),), (("TCP", 443),), (("UDP", 53),)
REQUIRE46 = {"ip_families": [V4, V6], "ip_family_policy": "RequireDualStack"}
REQUIRE64 = {"ip_families": [V6, V4], "ip_family_policy": "RequireDualStack"}
TEAM = {"namespace": "team", "namespace_labels": {"env": "prod"}, "labels": {"tier": "edge"}}

SCENARIOS: dict[str, tuple[list[Pool], list[Step]]] = {
    "lowest free address first; holes are reused": ([pool("p", "203.0.113.0/29")], [
        assign("a", ("203.0.113.0",), pool="p"),
        assign("b", ("203.0.113.1",)),
        assign("c", ("203.0.113.2",)),
        release("b", ("203.0.113.1",)),
        assign("d", ("203.0.113.1",)),
        assign("e", ("203.0.113.3",)),
        release("nobody"),
    ]),
    "lowest free across a pool's ranges, wherever they start": (
        [pool("p", "203.0.113.10-203.0.113.11", "198.51.100.7")], [
            assign("a", ("198.51.100.7",)),
            assign("b", ("203.0.113.10",)),
            assign("c", ("203.0.113.11",)),
            assign("d", reason=Reason.POOL_EXHAUSTED),
        ]),
    "re-assigning the same request is idempotent": ([pool("p", "203.0.113.0/30")], [
        assign("a", ("203.0.113.0",)),
        assign("a", ("203.0.113.0",), Reason.UNCHANGED, pool="p"),
        assign("a", ("203.0.113.0",), Reason.UNCHANGED),
        assign("b", ("203.0.113.1",)),
        stats("p", V4, 4, 2, 2),
    ]),
    "serviceAllocation binds explicit requests: pool annotation, requested IP, restore": (
        [pool("team", "203.0.113.200/32", namespaces=("team",), auto_assign=False),
         pool("prod", "203.0.113.210/32", namespace_selectors=({"matchLabels": {"env": "prod"}},), auto_assign=False),
         pool("edge", "203.0.113.220/32", service_selectors=({"matchLabels": {"tier": "edge"}},), auto_assign=False),
         pool("open", "198.51.100.0/30")], [
            assign("evil/x", reason=Reason.POOL_NOT_ALLOWED, namespace="evil", requested_pool="team"),
            assign("evil/x", reason=Reason.POOL_NOT_ALLOWED, namespace="evil", requested_ips=["203.0.113.200"]),
            assign("evil/x", reason=Reason.POOL_NOT_ALLOWED, namespace="evil", requested_ips=["203.0.113.200"],
                   requested_pool="team"),
            assign("evil/x", reason=Reason.POOL_NOT_ALLOWED, namespace="evil", namespace_labels={"env": "dev"},
                   requested_ips=["203.0.113.210"]),
            assign("evil/x", reason=Reason.POOL_NOT_ALLOWED, namespace="evil", labels={"tier": "db"},
                   requested_pool="edge"),
            restore("evil/x", ["203.0.113.200"], hint="team", reason=Reason.POOL_NOT_ALLOWED, namespace="evil"),
            holds(**{"evil/x": None}),
            assign("evil/x", ("198.51.100.0",), pool="open", namespace="evil"),
            assign("team/a", ("203.0.113.200",), pool="team", namespace="team", requested_pool="team"),
            assign("prod/b", ("203.0.113.210",), pool="prod", namespace="prod", namespace_labels={"env": "prod"},
                   requested_ips=["203.0.113.210"]),
            assign("any/c", ("203.0.113.220",), pool="edge", namespace="any", labels={"tier": "edge"},
                   requested_pool="edge"),
            restore("team/a", ["203.0.113.200"], hint="team", namespace="team"),
            holds(**{"evil/x": (("198.51.100.0",), "open")}),
        ]),
    "requested IPs: in a pool, in use, outside every pool, wrong family, malformed": (
        [pool("p", "203.0.113.0/29"), pool("manual", "198.51.100.0/30", auto_assign=False)], [
            assign("a", ("203.0.113.5",), pool="p", requested_ips=["203.0.113.5"]),
            assign("b", reason=Reason.REQUESTED_IP_IN_USE, requested_ips=["203.0.113.5"]),
            assign("c", reason=Reason.REQUESTED_IP_NOT_IN_POOL, requested_ips=["192.0.2.1"]),
            assign("d", reason=Reason.FAMILY_UNAVAILABLE, requested_ips=["2001:db8::1"]),
            assign("e", reason=Reason.INVALID_REQUEST, requested_ips=["not-an-ip"]),
            assign("e", reason=Reason.INVALID_REQUEST, requested_ips=["203.0.113.1", "203.0.113.2"]),
            assign("f", ("198.51.100.2",), pool="manual", requested_ips=["198.51.100.2"]),
            assign("g", reason=Reason.REQUESTED_IP_NOT_IN_POOL, requested_ips=["198.51.100.1"],
                   requested_pool="p"),
            assign("h", reason=Reason.POOL_NOT_FOUND, requested_ips=["203.0.113.1"], requested_pool="nope"),
            assign("a", ("203.0.113.5",), Reason.UNCHANGED, requested_ips=["203.0.113.5"]),
            holds(a=(("203.0.113.5",), "p"), b=None, c=None, d=None, e=None),
        ]),
    "a requested IP is skipped by later automatic assignments": ([pool("p", "203.0.113.0/30")], [
        assign("a", ("203.0.113.0",), requested_ips=["203.0.113.0"]),
        assign("b", ("203.0.113.1",)),
        assign("c", ("203.0.113.3",), requested_ips=["203.0.113.3"]),
        assign("d", ("203.0.113.2",)),
        assign("e", reason=Reason.POOL_EXHAUSTED),
    ]),
    "requested IPs and dual-stack": ([pool("p", "203.0.113.0/30", "2001:db8::/126")], [
        assign("a", ("203.0.113.2", "2001:db8::2"), requested_ips=["203.0.113.2", "2001:db8::2"],
               ip_families=[V4, V6], ip_family_policy="RequireDualStack"),
        assign("b", reason=Reason.FAMILY_UNAVAILABLE, requested_ips=["203.0.113.1"],
               ip_families=[V4, V6], ip_family_policy="RequireDualStack"),
        assign("c", reason=Reason.FAMILY_UNAVAILABLE, requested_ips=["203.0.113.1", "2001:db8::1"]),
        assign("d", ("203.0.113.1",), requested_ips=["203.0.113.1"], ip_families=[V4, V6],
               ip_family_policy="PreferDualStack"),
        assign("e", ("2001:db8::1",), requested_ips=["2001:db8::1"], ip_families=[V6]),
    ]),
    "requested pool: honoured with autoAssign false, never spills over, must exist": (
        [pool("auto", "203.0.113.0/30"), pool("manual", "198.51.100.0/31", auto_assign=False)], [
            assign("a", ("203.0.113.0",), pool="auto"),
            assign("b", ("198.51.100.0",), pool="manual", requested_pool="manual"),
            assign("c", ("198.51.100.1",), pool="manual", requested_pool="manual"),
            assign("d", reason=Reason.POOL_EXHAUSTED, requested_pool="manual"),
            assign("e", reason=Reason.POOL_NOT_FOUND, requested_pool="nope"),
            assign("f", ("203.0.113.1",), pool="auto"),
        ]),
    "only autoAssign false pools: nothing is chosen automatically": (
        [pool("manual", "198.51.100.0/30", auto_assign=False)], [
            assign("a", reason=Reason.NO_POOL_MATCHES),
            assign("b", ("198.51.100.0",), requested_pool="manual"),
        ]),
    "pool order: selected by priority (unset last), then auto-assign pools by name": (
        [pool("general-b", "203.0.113.64/32"),
         pool("general-a", "203.0.113.32/31"),
         pool("unset", "198.51.100.48/31", namespaces=("team",)),
         pool("prio5", "198.51.100.16/31", priority=5,
              namespace_selectors=({"matchLabels": {"env": "prod"}},)),
         pool("prio1", "198.51.100.0/31", priority=1, service_selectors=(
             {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["edge"]}]},)),
         pool("hidden", "198.51.100.32/31", namespaces=("team",), priority=0, auto_assign=False)], [
            assign("other/o1", ("203.0.113.32",), pool="general-a", namespace="other"),
            assign("team/s1", ("198.51.100.0",), pool="prio1", **TEAM),
            assign("team/s2", ("198.51.100.1",), pool="prio1", **TEAM),
            assign("team/s3", ("198.51.100.16",), pool="prio5", **TEAM),
            assign("team/s4", ("198.51.100.17",), pool="prio5", **TEAM),
            assign("team/s5", ("198.51.100.48",), pool="unset", **TEAM),
            assign("team/s6", ("198.51.100.49",), pool="unset", **TEAM),
            assign("team/s7", ("203.0.113.33",), pool="general-a", **TEAM),
            assign("team/s8", ("203.0.113.64",), pool="general-b", **TEAM),
            assign("team/s9", reason=Reason.POOL_EXHAUSTED, **TEAM),
            assign("team/s10", ("198.51.100.32",), pool="hidden", requested_pool="hidden", **TEAM),
        ]),
    "priority 0 comes before unset; equal priorities by name": (
        [pool("a-unset", "203.0.113.1/32", namespaces=("t",)),
         pool("c-zero", "203.0.113.2/32", namespaces=("t",), priority=0),
         pool("b-zero", "203.0.113.3/32", namespaces=("t",), priority=0),
         pool("d-neg", "203.0.113.4/32", namespaces=("t",), priority=-1)], [
            assign("t/1", ("203.0.113.4",), pool="d-neg", namespace="t"),
            assign("t/2", ("203.0.113.3",), pool="b-zero", namespace="t"),
            assign("t/3", ("203.0.113.2",), pool="c-zero", namespace="t"),
            assign("t/4", ("203.0.113.1",), pool="a-unset", namespace="t"),
            assign("u/1", reason=Reason.NO_POOL_MATCHES, namespace="u"),
        ]),
    "serviceAllocation criteria: all set criteria must match; any selector of a list": (
        [pool("both", "198.51.100.0/31", namespaces=("team",), priority=1,
              service_selectors=({"matchLabels": {"app": "web"}},)),
         pool("anysel", "198.51.100.8/31", priority=2,
              service_selectors=({"matchLabels": {"app": "db"}}, {"matchLabels": {"app": "cache"}})),
         pool("nslist", "198.51.100.16/31", namespaces=("a", "b"))], [
            assign("team/web", ("198.51.100.0",), pool="both", namespace="team", labels={"app": "web"}),
            assign("team/api", reason=Reason.NO_POOL_MATCHES, namespace="team", labels={"app": "api"}),
            assign("other/web", reason=Reason.NO_POOL_MATCHES, namespace="other", labels={"app": "web"}),
            assign("x/cache", ("198.51.100.8",), pool="anysel", namespace="x", labels={"app": "cache"}),
            assign("x/db", ("198.51.100.9",), pool="anysel", namespace="x", labels={"app": "db"}),
            assign("b/any", ("198.51.100.16",), pool="nslist", namespace="b"),
        ]),
    "avoidBuggyIPs skips .0 and .255 across a /24 boundary": (
        [pool("p", "198.19.0.254-198.19.1.1", avoid_buggy_ips=True)], [
            stats("p", V4, 2, 0, 2),
            assign("a", ("198.19.0.254",)),
            assign("b", ("198.19.1.1",)),
            assign("c", reason=Reason.POOL_EXHAUSTED),
            stats("p", V4, 2, 2, 0),
        ]),
    "avoidBuggyIPs on a /23: four addresses out, requests for them refused": (
        [pool("p", "203.0.112.0/23", avoid_buggy_ips=True)], [
            stats("p", V4, 512 - 4, 0, 512 - 4),
            assign("a", ("203.0.112.1",)),
            assign("b", ("203.0.112.254",), requested_ips=["203.0.112.254"]),
            assign("c", reason=Reason.REQUESTED_IP_NOT_IN_POOL, requested_ips=["203.0.112.255"]),
            assign("d", reason=Reason.REQUESTED_IP_NOT_IN_POOL, requested_ips=["203.0.113.0"]),
            assign("e", ("203.0.113.1",), requested_ips=["203.0.113.1"]),
        ]),
    "dual-stack: SingleStack, PreferDualStack both-else-one, RequireDualStack both-or-nothing": (
        [pool("p", "203.0.113.0/31", "2001:db8::/127")], [
            assign("s6", ("2001:db8::",), ip_families=[V6]),
            assign("pref", ("203.0.113.0", "2001:db8::1"), ip_families=[V4],
                   ip_family_policy="PreferDualStack"),
            assign("req", reason=Reason.POOL_EXHAUSTED, **REQUIRE64),
            stats("p", V4, 2, 1, 1),
            assign("pref2", ("203.0.113.1",), ip_families=[V4, V6], ip_family_policy="PreferDualStack"),
            release("s6", ("2001:db8::",)),
            assign("req", reason=Reason.POOL_EXHAUSTED, **REQUIRE64),
            stats("p", V6, 2, 1, 1),
            release("pref2", ("203.0.113.1",)),
            assign("req", ("2001:db8::", "203.0.113.1"), ip_families=[V6, V4],
                   ip_family_policy="RequireDualStack"),
            holds(pref=(("203.0.113.0", "2001:db8::1"), "p"), pref2=None, s6=None),
        ]),
    "PreferDualStack takes both families from a later pool rather than one from an earlier pool": (
        [pool("a-v4", "203.0.113.0/31"), pool("b-dual", "198.51.100.0/31", "2001:db8::/128")], [
            assign("pref", ("198.51.100.0", "2001:db8::"), pool="b-dual", ip_family_policy="PreferDualStack",
                   ip_families=[V4, V6]),
            assign("pref2", ("203.0.113.0",), pool="a-v4", ip_family_policy="PreferDualStack",
                   ip_families=[V4, V6]),
            assign("single", ("203.0.113.1",), pool="a-v4"),
        ]),
    "RequireDualStack needs one pool with both families": (
        [pool("a-v4", "203.0.113.0/31"), pool("b-v6", "2001:db8::/127")], [
            assign("req", reason=Reason.FAMILY_UNAVAILABLE, **REQUIRE46),
            assign("v6", ("2001:db8::",), pool="b-v6", ip_families=[V6]),
            stats("a-v4", V4, 2, 0, 2),
        ]),
    "a family no pool has": ([pool("p", "203.0.113.0/31")], [
        assign("v6", reason=Reason.FAMILY_UNAVAILABLE, ip_families=[V6]),
        assign("v4", ("203.0.113.0",)),
    ]),
    "sharing: same key and disjoint ports share; collisions, other keys, policies do not": (
        [pool("p", "203.0.113.0/29")], [
            assign("a", ("203.0.113.0",), sharing_key="k", ports=TCP80),
            assign("b", ("203.0.113.0",), sharing_key="k", ports=TCP443),
            assign("c", ("203.0.113.1",), sharing_key="k", ports=TCP80),
            assign("d", ("203.0.113.2",), sharing_key="other", ports=UDP53),
            assign("e", ("203.0.113.3",), ports=UDP53),
            assign("f", ("203.0.113.4",), sharing_key="k", ports=UDP53, traffic_policy="Local"),
            assign("g", ("203.0.113.5",), sharing_key="k", ports=(("TCP", 8080),), traffic_policy="Local",
                   selector={"app": "x"}),
            assign("h", ("203.0.113.4",), sharing_key="k", ports=(("TCP", 9090),), traffic_policy="Local"),
            assign("i", ("203.0.113.5",), sharing_key="k", ports=(("TCP", 9091),), traffic_policy="Local",
                   selector={"app": "x"}),
            stats("p", V4, 8, 6, 2),
            release("a", ("203.0.113.0",)),
            assign("j", ("203.0.113.6",)),
            release("b", ("203.0.113.0",)),
            assign("k", ("203.0.113.0",)),
        ]),
    "requesting a shared IP": ([pool("p", "203.0.113.0/30")], [
        assign("a", ("203.0.113.0",), sharing_key="k", ports=TCP80),
        assign("b", ("203.0.113.0",), requested_ips=["203.0.113.0"], sharing_key="k", ports=TCP443),
        assign("c", reason=Reason.SHARING_INCOMPATIBLE, requested_ips=["203.0.113.0"], sharing_key="k",
               ports=TCP80),
        assign("d", reason=Reason.REQUESTED_IP_IN_USE, requested_ips=["203.0.113.0"], ports=UDP53),
        assign("e", reason=Reason.SHARING_INCOMPATIBLE, requested_ips=["203.0.113.0"], sharing_key="x",
               ports=UDP53),
        assign("f", reason=Reason.SHARING_INCOMPATIBLE, requested_ips=["203.0.113.0"], sharing_key="k",
               ports=UDP53, traffic_policy="Local"),
        assign("g", ("203.0.113.1",), sharing_key="k", ports=TCP80),
    ]),
    "a kept IP carries the Service's new ports into later sharing decisions": (
        [pool("p", "203.0.113.0/30")], [
        assign("a", ("203.0.113.0",), sharing_key="k", ports=TCP80),
        assign("a", ("203.0.113.0",), Reason.UNCHANGED, sharing_key="k", ports=TCP443),
        assign("b", ("203.0.113.1",), sharing_key="k", ports=TCP443),
        assign("c", ("203.0.113.0",), sharing_key="k", ports=TCP80),
    ]),
    "a changed request releases the old IP only when the new one is granted": (
        [pool("p", "203.0.113.0/30"), pool("q", "198.51.100.0/32", auto_assign=False)], [
            assign("a", ("203.0.113.0",)),
            assign("b", ("203.0.113.3",), requested_ips=["203.0.113.3"]),
            assign("a", reason=Reason.REQUESTED_IP_IN_USE, requested_ips=["203.0.113.3"]),
            assign("c", ("203.0.113.1",)),
            assign("a", ("203.0.113.2",), requested_ips=["203.0.113.2"]),
            assign("d", ("203.0.113.0",)),
            assign("a", ("198.51.100.0",), pool="q", requested_pool="q"),
            assign("e", reason=Reason.POOL_EXHAUSTED, requested_pool="q"),
            assign("a", reason=Reason.POOL_NOT_FOUND, requested_pool="nope"),
            assign("a", reason=Reason.FAMILY_UNAVAILABLE, **REQUIRE46),
            holds(a=(("198.51.100.0",), "q")),
            assign("f", ("203.0.113.2",)),
        ]),
    "a dual-stack upgrade keeps the old IP when it cannot be granted": (
        [pool("p", "203.0.113.0/31", "2001:db8::/128")], [
            assign("x", ("2001:db8::",), ip_families=[V6]),
            assign("a", ("203.0.113.0",)),
            assign("a", reason=Reason.POOL_EXHAUSTED, **REQUIRE46),
            holds(a=(("203.0.113.0",), "p")),
            release("x", ("2001:db8::",)),
            assign("a", ("203.0.113.0", "2001:db8::"), **REQUIRE46),
        ]),
    "set_pools: a shrink or delete returns exactly the uncovered Services and frees their IPs": (
        [pool("p", "203.0.113.0/29"), pool("q", "198.51.100.0/30")], [
            assign("a", ("203.0.113.0",)),
            assign("b", ("203.0.113.1",)),
            assign("c", ("203.0.113.2",)),
            assign("d", ("198.51.100.0",), requested_pool="q"),
            set_pools([pool("p", "203.0.113.0/29"), pool("q", "198.51.100.0/30")], []),
            set_pools([pool("p", "203.0.113.1-203.0.113.7"), pool("q", "198.51.100.0/30")], ["a"]),
            holds(a=None, b=(("203.0.113.1",), "p"), c=(("203.0.113.2",), "p"), d=(("198.51.100.0",), "q")),
            stats("p", V4, 7, 2, 5),
            set_pools([pool("p", "203.0.113.1-203.0.113.7")], ["d"]),
            set_pools([pool("p", "203.0.113.2/31")], ["b"]),
            stats("p", V4, 2, 1, 1),
            assign("b", ("203.0.113.3",)),
            assign("c", ("203.0.113.2",), Reason.UNCHANGED),
            assign("a", reason=Reason.POOL_EXHAUSTED),
            set_pools([pool("p", "203.0.113.0/29")], []),
            assign("a", ("203.0.113.0",)),
        ]),
    "set_pools: turning avoidBuggyIPs on uncovers the .0 holder": ([pool("p", "203.0.113.0/30")], [
        assign("a", ("203.0.113.0",)),
        assign("b", ("203.0.113.1",)),
        set_pools([pool("p", "203.0.113.0/30", avoid_buggy_ips=True)], ["a"]),
        stats("p", V4, 3, 1, 2),
        assign("a", ("203.0.113.2",)),
    ]),
    "set_pools: a shared IP is released for the uncovered sharer only": (
        [pool("p", "203.0.113.0/30"), pool("q", "203.0.113.0/30", auto_assign=False)], [
            assign("a", ("203.0.113.0",), pool="p", sharing_key="k", ports=TCP80),
            assign("b", ("203.0.113.0",), pool="q", requested_pool="q", sharing_key="k", ports=TCP443),
            set_pools([pool("q", "203.0.113.0/30", auto_assign=False)], ["a"]),
            holds(a=None, b=(("203.0.113.0",), "q")),
            stats("q", V4, 4, 1, 3),
            assign("c", ("203.0.113.1",), requested_pool="q"),
            release("b", ("203.0.113.0",)),
            stats("q", V4, 4, 1, 3),
            assign("d", ("203.0.113.0",), requested_pool="q"),
        ]),
    "overlapping pools never hand out one IP twice": (
        [pool("a-pool", "203.0.113.0/30", auto_assign=False),
         pool("b-pool", "203.0.113.2/31", auto_assign=False)], [
            assign("x", ("203.0.113.2",), pool="b-pool", requested_pool="b-pool"),
            assign("y", ("203.0.113.0",), requested_pool="a-pool"),
            assign("z", ("203.0.113.1",), requested_pool="a-pool"),
            assign("w", ("203.0.113.3",), requested_pool="a-pool"),
            assign("v", reason=Reason.POOL_EXHAUSTED, requested_pool="a-pool"),
            assign("u", reason=Reason.POOL_EXHAUSTED, requested_pool="b-pool"),
            assign("t", reason=Reason.REQUESTED_IP_IN_USE, requested_ips=["203.0.113.3"]),
            stats("a-pool", V4, 4, 3, 0),
            stats("b-pool", V4, 2, 1, 0),
            release("w", ("203.0.113.3",)),
            assign("u", ("203.0.113.3",), requested_pool="b-pool"),
            assign("v", reason=Reason.POOL_EXHAUSTED, requested_pool="a-pool"),
        ]),
    "restore re-registers existing assignments and refuses conflicting ones": (
        [pool("p", "203.0.113.0/29")], [
            restore("a", ["203.0.113.6"], "p", pool="p"),
            restore("b", ["203.0.113.6"], reason=Reason.SHARING_INCOMPATIBLE),
            restore("c", ["203.0.113.5"], sharing_key="k", ports=TCP80),
            restore("d", ["203.0.113.5"], sharing_key="k", ports=TCP443),
            restore("e", ["203.0.113.5"], sharing_key="k", ports=TCP80, reason=Reason.SHARING_INCOMPATIBLE),
            restore("f", ["192.0.2.1"], reason=Reason.REQUESTED_IP_NOT_IN_POOL),
            restore("g", ["bogus"], reason=Reason.INVALID_REQUEST),
            restore("g", [], reason=Reason.INVALID_REQUEST),
            restore("g", ["203.0.113.1", "203.0.113.2"], reason=Reason.INVALID_REQUEST),
            holds(a=(("203.0.113.6",), "p"), b=None, c=(("203.0.113.5",), "p"), e=None, f=None, g=None),
            assign("h", ("203.0.113.0",)),
            assign("a", ("203.0.113.6",), Reason.UNCHANGED),
            assign("c", ("203.0.113.5",), Reason.UNCHANGED, sharing_key="k", ports=TCP80),
            stats("p", V4, 8, 3, 5),
        ]),
    "restore follows the pool hint among overlapping pools": (
        [pool("a", "203.0.113.0/30"), pool("b", "203.0.113.0/30"), pool("c", "2001:db8::/127")], [
            restore("x", ["203.0.113.1"], "b", pool="b"),
            restore("y", ["203.0.113.2"], pool="a"),
            restore("z", ["203.0.113.3"], "c", pool="a"),
            restore("w", ["2001:db8::1"], "gone", pool="c", ip_families=[V6]),
            assign("n", ("203.0.113.0",)),
            assign("m", reason=Reason.POOL_EXHAUSTED),
        ]),
}


def _run(alloc: Allocator, step: Step, where: str) -> None:
    if step.op == "pools":
        assert step.pools is not None and step.uncovered is not None
        before = alloc.assignments()
        uncovered = alloc.set_pools(step.pools)
        assert sorted(uncovered) == sorted(step.uncovered) and len(set(uncovered)) == len(uncovered), where
        for key in uncovered:
            assert alloc.assignment(key) is None, f"{where}: {key} still holds an IP"
        for key, held in before.items():
            if key not in uncovered:
                assert alloc.assignment(key) == held, f"{where}: {key} changed"
    elif step.op == "release":
        assert step.key is not None
        assert alloc.release(step.key) == list(step.ips or ()), where
        assert alloc.assignment(step.key) is None, where
    elif step.op == "holds":
        for key, expected in (step.holds or {}).items():
            assert alloc.assignment(key) == expected, f"{where}: {key}"
    elif step.op == "stats":
        assert step.stats is not None
        name, family, expected = step.stats
        assert alloc.pool_stats(name)[family] == expected, where
    else:
        assert step.req is not None
        before = alloc.assignment(step.req.key)
        restoring = step.op == "restore"
        result = alloc.restore(step.req, step.restore_ips, step.hint) if restoring else alloc.assign(step.req)
        if step.reason is not None:
            assert result.reason is step.reason, f"{where}: {result}"
        if step.ips is not None:
            assert result.ips == step.ips, f"{where}: {result}"
        if step.pool is not None:
            assert result.pool == step.pool, f"{where}: {result}"
        assert result.ok is (result.reason in OK), where
        if result.ok:
            assert alloc.assignment(step.req.key) == (result.ips, result.pool), where
        else:
            assert result.ips == () and result.pool is None and result.message, f"{where}: {result}"
            assert alloc.assignment(step.req.key) == before, f"{where}: a failure changed the holding"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    """Run the scenario's steps in order against one allocator."""
    pools, steps = SCENARIOS[name]
    alloc = Allocator()
    assert alloc.set_pools(pools) == []
    assert sorted(alloc.pool_names()) == sorted(p.name for p in pools)
    for i, step in enumerate(steps):
        _run(alloc, step, f"{name}: step {i} ({step.op})")
