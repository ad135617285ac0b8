"""Allocator scenario tables: each scenario is a list of steps run in order against one Allocator."""

from __future__ import annotations

import pytest

from ironlb.core.allocator import AllocationReason, Allocator
from ironlb.core.pools import Pool
from tests.unit.core.allocator_steps import (
    REQUIRE46,
    REQUIRE64,
    TCP80,
    TCP443,
    TEAM,
    UDP53,
    V4,
    V6,
    Step,
    assign,
    holds,
    pool,
    release,
    restore,
    run_step,
    set_pools,
    stats,
)

NOT_ALLOWED = AllocationReason.POOL_NOT_ALLOWED  # keeps the boundary table's rows on one line each

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
    "the released lowest address goes to the next request, after an idempotent re-assign": (
        [pool("p", "203.0.113.0/30")], [
            assign("a", ("203.0.113.0",)),
            assign("b", ("203.0.113.1",)),
            assign("a", ("203.0.113.0",), AllocationReason.UNCHANGED),
            release("a", ("203.0.113.0",)),
            assign("c", ("203.0.113.0",)),
        ]),
    "lowest free across a pool's ranges, wherever they start": (
        [pool("p", "203.0.113.10-203.0.113.11", "198.51.100.7")], [
            assign("a", ("198.51.100.7",)),
            assign("b", ("203.0.113.10",)),
            assign("c", ("203.0.113.11",)),
            assign("d", reason=AllocationReason.POOL_EXHAUSTED),
        ]),
    "re-assigning the same request is idempotent": ([pool("p", "203.0.113.0/30")], [
        assign("a", ("203.0.113.0",)),
        assign("a", ("203.0.113.0",), AllocationReason.UNCHANGED, pool="p"),
        assign("a", ("203.0.113.0",), AllocationReason.UNCHANGED),
        assign("b", ("203.0.113.1",)),
        stats("p", V4, 4, 2, 2),
    ]),
    "serviceAllocation binds explicit requests: pool annotation, requested IP, restore": (
        [pool("team", "203.0.113.200/32", namespaces=("team",), auto_assign=False),
         pool("prod", "203.0.113.210/32", namespace_selectors=({"matchLabels": {"env": "prod"}},), auto_assign=False),
         pool("edge", "203.0.113.220/32", service_selectors=({"matchLabels": {"tier": "edge"}},), auto_assign=False),
         pool("open", "198.51.100.0/30")], [
            assign("evil/x", reason=AllocationReason.POOL_NOT_ALLOWED, namespace="evil", requested_pool="team"),
            assign("evil/x", reason=NOT_ALLOWED, namespace="evil", requested_ips=["203.0.113.200"]),
            assign("evil/x", reason=NOT_ALLOWED, namespace="evil", requested_ips=["203.0.113.200"],
                   requested_pool="team"),
            assign("evil/x", reason=NOT_ALLOWED, namespace="evil", namespace_labels={"env": "dev"},
                   requested_ips=["203.0.113.210"]),
            assign("evil/x", reason=AllocationReason.POOL_NOT_ALLOWED, namespace="evil", labels={"tier": "db"},
                   requested_pool="edge"),
            restore("evil/x", ["203.0.113.200"], hint="team", reason=NOT_ALLOWED, namespace="evil"),
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
            assign("b", reason=AllocationReason.REQUESTED_IP_IN_USE, requested_ips=["203.0.113.5"]),
            assign("c", reason=AllocationReason.REQUESTED_IP_NOT_IN_POOL, requested_ips=["192.0.2.1"]),
            assign("d", reason=AllocationReason.FAMILY_UNAVAILABLE, requested_ips=["2001:db8::1"]),
            assign("e", reason=AllocationReason.INVALID_REQUEST, requested_ips=["not-an-ip"]),
            assign("e", reason=AllocationReason.INVALID_REQUEST, requested_ips=["203.0.113.1", "203.0.113.2"]),
            assign("f", ("198.51.100.2",), pool="manual", requested_ips=["198.51.100.2"]),
            assign("g", reason=AllocationReason.REQUESTED_IP_NOT_IN_POOL, requested_ips=["198.51.100.1"],
                   requested_pool="p"),
            assign("h", reason=AllocationReason.POOL_NOT_FOUND, requested_ips=["203.0.113.1"], requested_pool="nope"),
            assign("a", ("203.0.113.5",), AllocationReason.UNCHANGED, requested_ips=["203.0.113.5"]),
            holds(a=(("203.0.113.5",), "p"), b=None, c=None, d=None, e=None),
        ]),
    "failed requests leave the lowest free address to the next automatic assignment": (
        [pool("p", "203.0.113.0/29")], [
            assign("a", ("203.0.113.5",), requested_ips=["203.0.113.5"]),
            assign("b", reason=AllocationReason.REQUESTED_IP_IN_USE, requested_ips=["203.0.113.5"]),
            assign("c", reason=AllocationReason.REQUESTED_IP_NOT_IN_POOL, requested_ips=["192.0.2.1"]),
            assign("d", reason=AllocationReason.FAMILY_UNAVAILABLE, requested_ips=["2001:db8::1"]),
            assign("e", ("203.0.113.0",)),
        ]),
    "a requested IP is skipped by later automatic assignments": ([pool("p", "203.0.113.0/30")], [
        assign("a", ("203.0.113.0",), requested_ips=["203.0.113.0"]),
        assign("b", ("203.0.113.1",)),
        assign("c", ("203.0.113.3",), requested_ips=["203.0.113.3"]),
        assign("d", ("203.0.113.2",)),
        assign("e", reason=AllocationReason.POOL_EXHAUSTED),
    ]),
    "requested IPs and dual-stack": ([pool("p", "203.0.113.0/30", "2001:db8::/126")], [
        assign("a", ("203.0.113.2", "2001:db8::2"), requested_ips=["203.0.113.2", "2001:db8::2"],
               ip_families=[V4, V6], ip_family_policy="RequireDualStack"),
        assign("b", reason=AllocationReason.FAMILY_UNAVAILABLE, requested_ips=["203.0.113.1"],
               ip_families=[V4, V6], ip_family_policy="RequireDualStack"),
        assign("c", reason=AllocationReason.FAMILY_UNAVAILABLE, requested_ips=["203.0.113.1", "2001:db8::1"]),
        assign("d", ("203.0.113.1",), requested_ips=["203.0.113.1"], ip_families=[V4, V6],
               ip_family_policy="PreferDualStack"),
        assign("e", ("2001:db8::1",), requested_ips=["2001:db8::1"], ip_families=[V6]),
    ]),
    "requested pool: honoured with autoAssign false, never spills over, must exist": (
        [pool("auto", "203.0.113.0/30"), pool("manual", "198.51.100.0/31", auto_assign=False)], [
            assign("a", ("203.0.113.0",), pool="auto"),
            assign("b", ("198.51.100.0",), pool="manual", requested_pool="manual"),
            assign("c", ("198.51.100.1",), pool="manual", requested_pool="manual"),
            assign("d", reason=AllocationReason.POOL_EXHAUSTED, requested_pool="manual"),
            assign("e", reason=AllocationReason.POOL_NOT_FOUND, requested_pool="nope"),
            assign("f", ("203.0.113.1",), pool="auto"),
        ]),
    "only autoAssign false pools: nothing is chosen automatically": (
        [pool("manual", "198.51.100.0/30", auto_assign=False)], [
            assign("a", reason=AllocationReason.NO_POOL_MATCHES),
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
            assign("team/s9", reason=AllocationReason.POOL_EXHAUSTED, **TEAM),
            assign("team/s10", ("198.51.100.32",), pool="hidden", requested_pool="hidden", **TEAM),
        ]),
    "selected pools before general ones: by priority, and a service-selector pool without one": (
        [pool("general", "203.0.113.0/30"),
         pool("team-low", "198.51.100.0/30", namespaces=("team",), priority=5),
         pool("team-high", "198.51.100.8/30", namespaces=("team",), priority=1),
         pool("labelled", "198.51.100.16/30", service_selectors=({"matchLabels": {"tier": "edge"}},))], [
            assign("team/a", ("198.51.100.8",), pool="team-high", namespace="team"),
            assign("other/a", ("203.0.113.0",), pool="general", namespace="other"),
            assign("other/b", ("198.51.100.16",), pool="labelled", namespace="other", labels={"tier": "edge"}),
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
            assign("u/1", reason=AllocationReason.NO_POOL_MATCHES, namespace="u"),
        ]),
    "serviceAllocation criteria: all set criteria must match; any selector of a list": (
        [pool("both", "198.51.100.0/31", namespaces=("team",), priority=1,
              service_selectors=({"matchLabels": {"app": "web"}},)),
         pool("anysel", "198.51.100.8/31", priority=2,
              service_selectors=({"matchLabels": {"app": "db"}}, {"matchLabels": {"app": "cache"}})),
         pool("nslist", "198.51.100.16/31", namespaces=("a", "b"))], [
            assign("team/web", ("198.51.100.0",), pool="both", namespace="team", labels={"app": "web"}),
            assign("team/api", reason=AllocationReason.NO_POOL_MATCHES, namespace="team", labels={"app": "api"}),
            assign("other/web", reason=AllocationReason.NO_POOL_MATCHES, namespace="other", labels={"app": "web"}),
            assign("x/cache", ("198.51.100.8",), pool="anysel", namespace="x", labels={"app": "cache"}),
            assign("x/db", ("198.51.100.9",), pool="anysel", namespace="x", labels={"app": "db"}),
            assign("b/any", ("198.51.100.16",), pool="nslist", namespace="b"),
        ]),
    "avoidBuggyIPs skips .0 and .255 across a /24 boundary": (
        [pool("p", "198.19.0.254-198.19.1.1", avoid_buggy_ips=True)], [
            stats("p", V4, 2, 0, 2),
            assign("a", ("198.19.0.254",)),
            assign("b", ("198.19.1.1",)),
            assign("c", reason=AllocationReason.POOL_EXHAUSTED),
            stats("p", V4, 2, 2, 0),
        ]),
    "avoidBuggyIPs on a /23: four addresses out, requests for them refused": (
        [pool("p", "203.0.112.0/23", avoid_buggy_ips=True)], [
            stats("p", V4, 512 - 4, 0, 512 - 4),
            assign("a", ("203.0.112.1",)),
            assign("b", ("203.0.112.254",), requested_ips=["203.0.112.254"]),
            assign("c", reason=AllocationReason.REQUESTED_IP_NOT_IN_POOL, requested_ips=["203.0.112.255"]),
            assign("d", reason=AllocationReason.REQUESTED_IP_NOT_IN_POOL, requested_ips=["203.0.113.0"]),
            assign("e", ("203.0.113.1",), requested_ips=["203.0.113.1"]),
        ]),
    "dual-stack: SingleStack, PreferDualStack both-else-one, RequireDualStack both-or-nothing": (
        [pool("p", "203.0.113.0/31", "2001:db8::/127")], [
            assign("s6", ("2001:db8::",), ip_families=[V6]),
            assign("pref", ("203.0.113.0", "2001:db8::1"), ip_families=[V4],
                   ip_family_policy="PreferDualStack"),
            assign("req", reason=AllocationReason.POOL_EXHAUSTED, **REQUIRE64),
            stats("p", V4, 2, 1, 1),
            assign("pref2", ("203.0.113.1",), ip_families=[V4, V6], ip_family_policy="PreferDualStack"),
            release("s6", ("2001:db8::",)),
            assign("req", reason=AllocationReason.POOL_EXHAUSTED, **REQUIRE64),
            stats("p", V6, 2, 1, 1),
            release("pref2", ("203.0.113.1",)),
            assign("req", ("2001:db8::", "203.0.113.1"), ip_families=[V6, V4],
                   ip_family_policy="RequireDualStack"),
            holds(pref=(("203.0.113.0", "2001:db8::1"), "p"), pref2=None, s6=None),
        ]),
    "dual-stack in sequence: RequireDualStack IPv6 first, PreferDualStack from IPv4, exhaustion, release": (
        [pool("p", "203.0.113.0/31", "2001:db8:ffff::/127")], [
            assign("req", ("2001:db8:ffff::", "203.0.113.0"), **REQUIRE64),
            assign("pref", ("203.0.113.1", "2001:db8:ffff::1"), ip_families=[V4], ip_family_policy="PreferDualStack"),
            assign("req2", reason=AllocationReason.POOL_EXHAUSTED, **REQUIRE46),
            release("req", ("2001:db8:ffff::", "203.0.113.0")),
            assign("single6", ("2001:db8:ffff::",), ip_families=[V6]),
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
            assign("req", reason=AllocationReason.FAMILY_UNAVAILABLE, **REQUIRE46),
            assign("v6", ("2001:db8::",), pool="b-v6", ip_families=[V6]),
            stats("a-v4", V4, 2, 0, 2),
        ]),
    "a family no pool has": ([pool("p", "203.0.113.0/31")], [
        assign("v6", reason=AllocationReason.FAMILY_UNAVAILABLE, ip_families=[V6]),
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
    "sharing on a full pool: another key finds it exhausted; a Local sharer of a Cluster IP is refused": (
        [pool("p", "203.0.113.0/31")], [
            assign("a", ("203.0.113.0",), sharing_key="k", ports=TCP80),
            assign("b", ("203.0.113.0",), sharing_key="k", ports=TCP443),
            assign("c", ("203.0.113.1",), sharing_key="k", ports=TCP80),
            assign("d", reason=AllocationReason.POOL_EXHAUSTED, sharing_key="other", ports=UDP53),
            assign("e", reason=AllocationReason.SHARING_INCOMPATIBLE, sharing_key="k", ports=(("TCP", 8080),),
                   requested_ips=["203.0.113.0"], traffic_policy="Local"),
        ]),
    "requesting a shared IP": ([pool("p", "203.0.113.0/30")], [
        assign("a", ("203.0.113.0",), sharing_key="k", ports=TCP80),
        assign("b", ("203.0.113.0",), requested_ips=["203.0.113.0"], sharing_key="k", ports=TCP443),
        assign("c", reason=AllocationReason.SHARING_INCOMPATIBLE, requested_ips=["203.0.113.0"], sharing_key="k",
               ports=TCP80),
        assign("d", reason=AllocationReason.REQUESTED_IP_IN_USE, requested_ips=["203.0.113.0"], ports=UDP53),
        assign("e", reason=AllocationReason.SHARING_INCOMPATIBLE, requested_ips=["203.0.113.0"], sharing_key="x",
               ports=UDP53),
        assign("f", reason=AllocationReason.SHARING_INCOMPATIBLE, requested_ips=["203.0.113.0"], sharing_key="k",
               ports=UDP53, traffic_policy="Local"),
        assign("g", ("203.0.113.1",), sharing_key="k", ports=TCP80),
    ]),
    "a kept IP carries the Service's new ports into later sharing decisions": (
        [pool("p", "203.0.113.0/30")], [
        assign("a", ("203.0.113.0",), sharing_key="k", ports=TCP80),
        assign("a", ("203.0.113.0",), AllocationReason.UNCHANGED, sharing_key="k", ports=TCP443),
        assign("b", ("203.0.113.1",), sharing_key="k", ports=TCP443),
        assign("c", ("203.0.113.0",), sharing_key="k", ports=TCP80),
    ]),
    "a changed request releases the old IP only when the new one is granted": (
        [pool("p", "203.0.113.0/30"), pool("q", "198.51.100.0/32", auto_assign=False)], [
            assign("a", ("203.0.113.0",)),
            assign("b", ("203.0.113.3",), requested_ips=["203.0.113.3"]),
            assign("a", reason=AllocationReason.REQUESTED_IP_IN_USE, requested_ips=["203.0.113.3"]),
            assign("c", ("203.0.113.1",)),
            assign("a", ("203.0.113.2",), requested_ips=["203.0.113.2"]),
            assign("d", ("203.0.113.0",)),
            assign("a", ("198.51.100.0",), pool="q", requested_pool="q"),
            assign("e", reason=AllocationReason.POOL_EXHAUSTED, requested_pool="q"),
            assign("a", reason=AllocationReason.POOL_NOT_FOUND, requested_pool="nope"),
            assign("a", reason=AllocationReason.FAMILY_UNAVAILABLE, **REQUIRE46),
            holds(a=(("198.51.100.0",), "q")),
            assign("f", ("203.0.113.2",)),
        ]),
    "a dual-stack upgrade keeps the old IP when it cannot be granted": (
        [pool("p", "203.0.113.0/31", "2001:db8::/128")], [
            assign("x", ("2001:db8::",), ip_families=[V6]),
            assign("a", ("203.0.113.0",)),
            assign("a", reason=AllocationReason.POOL_EXHAUSTED, **REQUIRE46),
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
            assign("c", ("203.0.113.2",), AllocationReason.UNCHANGED),
            assign("a", reason=AllocationReason.POOL_EXHAUSTED),
            set_pools([pool("p", "203.0.113.0/29")], []),
            assign("a", ("203.0.113.0",)),
        ]),
    "set_pools: a shrink past the lowest holder keeps the other unchanged; the uncovered one moves up": (
        [pool("p", "203.0.113.0/30")], [
            assign("a", ("203.0.113.0",)),
            assign("b", ("203.0.113.1",)),
            set_pools([pool("p", "203.0.113.1-203.0.113.3")], ["a"]),
            assign("b", ("203.0.113.1",), AllocationReason.UNCHANGED),
            assign("a", ("203.0.113.2",)),
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
            assign("v", reason=AllocationReason.POOL_EXHAUSTED, requested_pool="a-pool"),
            assign("u", reason=AllocationReason.POOL_EXHAUSTED, requested_pool="b-pool"),
            assign("t", reason=AllocationReason.REQUESTED_IP_IN_USE, requested_ips=["203.0.113.3"]),
            stats("a-pool", V4, 4, 3, 0),
            stats("b-pool", V4, 2, 1, 0),
            release("w", ("203.0.113.3",)),
            assign("u", ("203.0.113.3",), requested_pool="b-pool"),
            assign("v", reason=AllocationReason.POOL_EXHAUSTED, requested_pool="a-pool"),
        ]),
    "overlapping pools: a requested IP is taken once, whichever pool holds it": (
        [pool("a-pool", "203.0.113.0/30", auto_assign=False),
         pool("b-pool", "203.0.113.2/31", auto_assign=False)], [
            assign("x", ("203.0.113.2",), requested_ips=["203.0.113.2"]),
            assign("y", ("203.0.113.3",), requested_pool="b-pool"),
            assign("z", reason=AllocationReason.POOL_EXHAUSTED, requested_pool="b-pool"),
        ]),
    "restore re-registers existing assignments and refuses conflicting ones": (
        [pool("p", "203.0.113.0/29")], [
            restore("a", ["203.0.113.6"], "p", pool="p"),
            restore("b", ["203.0.113.6"], reason=AllocationReason.SHARING_INCOMPATIBLE),
            restore("c", ["203.0.113.5"], sharing_key="k", ports=TCP80),
            restore("d", ["203.0.113.5"], sharing_key="k", ports=TCP443),
            restore("e", ["203.0.113.5"], sharing_key="k", ports=TCP80, reason=AllocationReason.SHARING_INCOMPATIBLE),
            restore("f", ["192.0.2.1"], reason=AllocationReason.REQUESTED_IP_NOT_IN_POOL),
            restore("g", ["bogus"], reason=AllocationReason.INVALID_REQUEST),
            restore("g", [], reason=AllocationReason.INVALID_REQUEST),
            restore("g", ["203.0.113.1", "203.0.113.2"], reason=AllocationReason.INVALID_REQUEST),
            holds(a=(("203.0.113.6",), "p"), b=None, c=(("203.0.113.5",), "p"), e=None, f=None, g=None),
            assign("h", ("203.0.113.0",)),
            assign("a", ("203.0.113.6",), AllocationReason.UNCHANGED),
            assign("c", ("203.0.113.5",), AllocationReason.UNCHANGED, sharing_key="k", ports=TCP80),
            stats("p", V4, 8, 3, 5),
        ]),
    "restore with a pool hint: conflicts and IPs outside every pool refused, later assignments unaffected": (
        [pool("p", "203.0.113.0/29")], [
            restore("a", ["203.0.113.6"], "p", pool="p"),
            restore("b", ["203.0.113.6"], "p", reason=AllocationReason.SHARING_INCOMPATIBLE),
            restore("c", ["192.0.2.1"], "p", reason=AllocationReason.REQUESTED_IP_NOT_IN_POOL),
            assign("d", ("203.0.113.0",)),
            assign("a", ("203.0.113.6",), AllocationReason.UNCHANGED),
        ]),
    "restore follows the pool hint among overlapping pools": (
        [pool("a", "203.0.113.0/30"), pool("b", "203.0.113.0/30"), pool("c", "2001:db8::/127")], [
            restore("x", ["203.0.113.1"], "b", pool="b"),
            restore("y", ["203.0.113.2"], pool="a"),
            restore("z", ["203.0.113.3"], "c", pool="a"),
            restore("w", ["2001:db8::1"], "gone", pool="c", ip_families=[V6]),
            assign("n", ("203.0.113.0",)),
            assign("m", reason=AllocationReason.POOL_EXHAUSTED),
        ]),
}




@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    """Run the scenario's steps in order against one allocator."""
    pools, steps = SCENARIOS[name]
    alloc = Allocator()
    assert alloc.set_pools(pools) == []
    assert sorted(alloc.pool_names()) == sorted(p.name for p in pools)
    for i, step in enumerate(steps):
        run_step(alloc, step, f"{name}: step {i} ({step.op})")
