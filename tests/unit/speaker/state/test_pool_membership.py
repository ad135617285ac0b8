"""Which pool a Service IP is announced under: decided by the valid pools' ranges, never by an annotation alone.

The `allocated-from-pool` annotation can be edited by whoever may edit the Service, and the status by whoever
holds `services/status`: a scenario table of forged and genuine inputs, through the speaker's whole pure path
(objects -> ClusterState -> decisions), and the incremental table kept equal to it across pool edits.
"""

from __future__ import annotations

from typing import Any

import pytest

from ironlb.api.annotations import ALLOCATED_FROM_POOL
from ironlb.api.reasons import AnnounceReason
from ironlb.core.addresses import parse_ranges
from ironlb.core.pools import Pool, pool_of_ip
from ironlb.speaker.control.status import condition_for
from ironlb.speaker.state.cluster import ClusterState
from ironlb.speaker.state.desired import compute
from ironlb.speaker.state.incremental import IncrementalDesired

NODES = ("n1", "n2", "n3")
A, B, C = "pool-a", "pool-b", "pool-c"


def node(name: str, role: str) -> dict[str, Any]:
    """A Ready Node labelled role=ROLE."""
    return {"metadata": {"name": name, "labels": {"role": role}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": f"192.0.2.{NODES.index(name) + 1}"}]}}


def pool(name: str, *addresses: str, avoid_buggy: bool = False) -> dict[str, Any]:
    """An IPAddressPool object."""
    return {"metadata": {"name": name, "labels": {}},
            "spec": {"addresses": list(addresses), "avoidBuggyIPs": avoid_buggy}}


def ad(name: str, pool_name: str, role: str) -> dict[str, Any]:
    """An L2Advertisement of one pool from the nodes labelled role=ROLE."""
    return {"metadata": {"name": name},
            "spec": {"ipAddressPools": [pool_name], "nodeSelectors": [{"matchLabels": {"role": role}}]}}


def service(ips: tuple[str, ...], annotation: str | None, name: str = "web") -> dict[str, Any]:
    """A LoadBalancer Service with these ingress IPs and allocated-from-pool annotation."""
    return {"metadata": {"name": name, "namespace": "tenant",
                         "annotations": {ALLOCATED_FROM_POOL: annotation} if annotation else {}},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 30080}]},
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}}


def ready_slice(name: str = "web") -> dict[str, Any]:
    """An EndpointSlice with a ready endpoint on every node."""
    return {"metadata": {"name": f"{name}-1", "namespace": "tenant", "labels": {"kubernetes.io/service-name": name}},
            "endpoints": [{"nodeName": n, "conditions": {"ready": True}} for n in NODES]}


# Pool A is announced from n1 only (role a), pool B from n2 only (a "DMZ" node), pool C from n3 only.
BASE: list[tuple[str, dict[str, Any]]] = [
    ("nodes", node("n1", "a")), ("nodes", node("n2", "b")), ("nodes", node("n3", "c")),
    ("pools", pool(A, "203.0.113.0/28", "2001:db8:a::/64")), ("pools", pool(B, "198.51.100.0/28")),
    ("advertisements", ad("ad-a", A, "a")), ("advertisements", ad("ad-b", B, "b")),
    ("advertisements", ad("ad-c", C, "c")), ("slices", ready_slice()),
]
OVERLAP = [("pools", pool(C, "203.0.113.0/30"))]  # C holds A's first addresses too (A comes first by name)


def decisions(extra: list[tuple[str, dict[str, Any]]]) -> dict[str, tuple[AnnounceReason, str | None]]:
    """IP -> (reason, announcing node) for the Service, from the objects (BASE, then EXTRA in order)."""
    state = ClusterState()
    for kind, obj in [*BASE, *extra]:
        state.apply(kind, "ADDED", obj)
    out = {}
    for d in compute(state.snapshot(frozenset(NODES)), "n1").decisions:
        reason = AnnounceReason.ANNOUNCING if d.reason is AnnounceReason.ANNOUNCED_BY_PEER else d.reason
        out[d.ip] = (reason, d.node)
    return out


ANNOUNCED = AnnounceReason.ANNOUNCING
NOT_IN_POOL = AnnounceReason.NOT_IN_POOL


@pytest.mark.parametrize("case, extra, expected", [
    ("genuine: pool A's IP, annotated A -> A's node",
     [("services", service(("203.0.113.5",), A))], {"203.0.113.5": (ANNOUNCED, "n1")}),
    ("forged annotation: A's IP annotated B stays on A's node, not B's",
     [("services", service(("203.0.113.5",), B))], {"203.0.113.5": (ANNOUNCED, "n1")}),
    ("forged annotation naming a pool that does not exist",
     [("services", service(("203.0.113.5",), "no-such-pool"))], {"203.0.113.5": (ANNOUNCED, "n1")}),
    ("no annotation at all: the ranges decide",
     [("services", service(("198.51.100.3",), None))], {"198.51.100.3": (ANNOUNCED, "n2")}),
    ("B's IP annotated A: B's node",
     [("services", service(("198.51.100.3",), A))], {"198.51.100.3": (ANNOUNCED, "n2")}),
    ("an address in no pool (the gateway) is never announced",
     [("services", service(("192.0.2.254",), A))], {"192.0.2.254": (NOT_IN_POOL, None)}),
    ("an address just past a pool's end",
     [("services", service(("203.0.113.16",), A))], {"203.0.113.16": (NOT_IN_POOL, None)}),
    ("not an address at all",
     [("services", service(("not-an-ip",), A))], {"not-an-ip": (NOT_IN_POOL, None)}),
    ("dual-stack, one family forged outside every pool: only the pooled one is announced",
     [("services", service(("203.0.113.5", "2001:db8:ff::1"), A))],
     {"203.0.113.5": (ANNOUNCED, "n1"), "2001:db8:ff::1": (NOT_IN_POOL, None)}),
    ("dual-stack, both in A", [("services", service(("203.0.113.5", "2001:db8:a::5"), A))],
     {"203.0.113.5": (ANNOUNCED, "n1"), "2001:db8:a::5": (ANNOUNCED, "n1")}),
    ("IPs in two pools: each under its own pool's advertisement",
     [("services", service(("203.0.113.5", "198.51.100.3"), B))],
     {"203.0.113.5": (ANNOUNCED, "n1"), "198.51.100.3": (ANNOUNCED, "n2")}),
    ("overlap, annotated C: the annotation breaks the tie between pools holding the IP",
     [*OVERLAP, ("services", service(("203.0.113.1",), C))], {"203.0.113.1": (ANNOUNCED, "n3")}),
    ("overlap, no annotation: the first pool by name, as the operator restores it",
     [*OVERLAP, ("services", service(("203.0.113.1",), None))], {"203.0.113.1": (ANNOUNCED, "n1")}),
    ("overlap, annotated B (not holding it): no tie-break from B",
     [*OVERLAP, ("services", service(("203.0.113.1",), B))], {"203.0.113.1": (ANNOUNCED, "n1")}),
    ("C holds only .0-.3: its annotation cannot pull .5 onto C's node",
     [*OVERLAP, ("services", service(("203.0.113.5",), C))], {"203.0.113.5": (ANNOUNCED, "n1")}),
    ("an invalid edit keeps the pool's last valid addresses",
     [("pools", pool(A, "203.0.113.300/28")), ("services", service(("203.0.113.5",), A))],
     {"203.0.113.5": (ANNOUNCED, "n1")}),
    ("a pool never seen valid holds nothing",
     [("pools", pool("pool-d", "bogus")), ("advertisements", ad("ad-d", "pool-d", "c")),
      ("services", service(("192.0.2.200",), "pool-d"))], {"192.0.2.200": (NOT_IN_POOL, None)}),
    ("a pool that avoids buggy IPs does not hold its .0",
     [("pools", pool(A, "203.0.113.0/28", avoid_buggy=True)), ("services", service(("203.0.113.0",), A))],
     {"203.0.113.0": (NOT_IN_POOL, None)}),
])
def test_the_pools_ranges_decide(case: str, extra: list[tuple[str, dict[str, Any]]],
                                 expected: dict[str, tuple[AnnounceReason, str | None]]) -> None:
    assert decisions(extra) == expected, case


def test_a_deleted_pool_holds_nothing() -> None:
    state = ClusterState()
    for kind, obj in [*BASE, ("services", service(("198.51.100.3",), B))]:
        state.apply(kind, "ADDED", obj)
    state.apply("pools", "DELETED", pool(B, "198.51.100.0/28"))
    (decision,) = compute(state.snapshot(frozenset(NODES)), "n2").decisions
    assert decision.reason is NOT_IN_POOL and not compute(state.snapshot(frozenset(NODES)), "n2").announcements


def test_pool_of_ip_rule() -> None:
    pools = {name: Pool(name, tuple(parse_ranges(addrs))) for name, addrs in
             (("b", ["203.0.113.0/24"]), ("a", ["203.0.113.0/25"]), ("c", ["198.51.100.0/24"]))}
    assert pool_of_ip("203.0.113.1", None, pools) == "a"  # both hold it: the first by name
    assert pool_of_ip("203.0.113.1", "b", pools) == "b"  # the hint breaks the tie
    assert pool_of_ip("203.0.113.1", "c", pools) == "a"  # a hint that does not hold it is ignored
    assert pool_of_ip("203.0.113.200", "a", pools) == "b"
    assert pool_of_ip("192.0.2.1", "a", pools) is None
    assert pool_of_ip("", "a", pools) is None


# Pool edits after the Service is known: the incremental table follows each, equal to a from-scratch compute.
EDITS: list[tuple[str, str, dict[str, Any]]] = [
    ("pools", "MODIFIED", pool(B, "198.51.100.0/28", "192.0.2.200/32")),  # B grows to hold the unpooled IP
    ("pools", "ADDED", pool(C, "203.0.113.0/30")),  # C overlaps A: the Service annotated C moves to C
    ("pools", "MODIFIED", pool(A, "bogus")),  # invalid: A keeps its addresses
    ("pools", "MODIFIED", pool(A, "203.0.113.8/29")),  # A shrinks: .5 is in no pool any more
    ("pools", "MODIFIED", pool(B, "198.51.100.0/28")),  # B shrinks back
    ("pools", "DELETED", pool(C, "203.0.113.0/30")),
    ("pools", "ADDED", pool(C, "192.0.2.200/32", "203.0.113.0/24")),
]


def test_incremental_table_follows_pool_edits() -> None:
    inc, reference = IncrementalDesired("n1"), ClusterState()
    services = [service(("203.0.113.5",), A, "s1"), service(("192.0.2.200",), A, "s2"),
                service(("203.0.113.1",), C, "s3"), service(("203.0.113.2", "198.51.100.3"), None, "s4")]
    for kind, obj in [*BASE, *(("services", s) for s in services),
                      *(("slices", ready_slice(f"s{i}")) for i in range(1, 5))]:
        inc.apply(kind, "ADDED", obj)
        reference.apply(kind, "ADDED", obj)
    seen = set()
    for kind, event, obj in [("", "", {}), *EDITS]:
        if kind:
            inc.apply(kind, event, obj)
            reference.apply(kind, event, obj)
        got = inc.publish().desired(frozenset(NODES))
        assert got.decisions == compute(reference.snapshot(frozenset(NODES)), "n1").decisions, (kind, event, obj)
        seen |= {(d.service, d.reason) for d in got.decisions}
    # Each Service was both announced and refused at some point: the edits moved IPs in and out of pools.
    assert {("tenant/s1", NOT_IN_POOL), ("tenant/s2", NOT_IN_POOL), ("tenant/s2", ANNOUNCED)} <= {
        (s, AnnounceReason.ANNOUNCING if r is AnnounceReason.ANNOUNCED_BY_PEER else r) for s, r in seen}


def test_the_condition_says_the_ip_is_in_no_pool() -> None:
    state = ClusterState()
    for kind, obj in [*BASE, ("services", service(("203.0.113.5", "192.0.2.254"), A))]:
        state.apply(kind, "ADDED", obj)
    cond = condition_for(list(compute(state.snapshot(frozenset(NODES)), "n1").decisions))
    assert (cond.true, cond.reason) == (False, AnnounceReason.NOT_IN_POOL)
    assert cond.message.startswith("192.0.2.254 is not announced: it is in no valid IPAddressPool")
