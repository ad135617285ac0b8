"""Desired announcements: scenario table, and the same answer whatever order events arrive in."""

from __future__ import annotations

import itertools

import pytest

from ironlb.core.election import elect
from ironlb.speaker.cluster import ClusterState
from ironlb.speaker.desired import ALL_INTERFACES, NodeEligibility, Reason, compute, eligibility
from ironlb.speaker.snapshot import EXCLUDE_LABEL, Advertisement, NodeInfo, ServiceInfo, Snapshot

NODES = ("n1", "n2", "n3")


def snap(services: list[ServiceInfo], ads: tuple[Advertisement, ...] = (Advertisement("all"),),
         alive: tuple[str, ...] = NODES, nodes: dict[str, NodeInfo] | None = None) -> Snapshot:
    """A snapshot with three nodes."""
    return Snapshot(services={s.key: s for s in services},
                    nodes=nodes or {n: NodeInfo(n, {"zone": "a" if n != "n3" else "b"}) for n in NODES},
                    alive=frozenset(alive), advertisements=ads, pool_labels={"p": {"tier": "gold"}, "q": {}})


def svc(key: str = "ns/s", ips: tuple[str, ...] = ("203.0.113.1",), pool: str = "p", policy: str = "Cluster",
        ready: tuple[str, ...] = NODES) -> ServiceInfo:
    """A Service with IPs."""
    return ServiceInfo(key=key, ips=ips, pool=pool, traffic_policy=policy, ready_nodes=frozenset(ready))


def winner(snapshot: Snapshot) -> dict[str, str | None]:
    """IP -> announcing node, seen from every node (they must agree)."""
    views = [{d.ip: d.node for d in compute(snapshot, me).decisions} for me in NODES]
    assert all(v == views[0] for v in views)
    return views[0]


@pytest.mark.parametrize("case, snapshot, expected", [
    ("hash election among all", snap([svc()]), {"203.0.113.1": elect("203.0.113.1", NODES)}),
    ("dead node skipped", snap([svc()], alive=("n2", "n3")), {"203.0.113.1": elect("203.0.113.1", ("n2", "n3"))}),
    ("ETP Local: only nodes with ready endpoints", snap([svc(policy="Local", ready=("n3",))]),
     {"203.0.113.1": "n3"}),
    ("node selector", snap([svc()], ads=(Advertisement("z", node_selectors=({"matchLabels": {"zone": "b"}},)),)),
     {"203.0.113.1": "n3"}),
    ("pool selector matches", snap([svc()], ads=(Advertisement("g", pool_selectors=(
        {"matchLabels": {"tier": "gold"}},), node_selectors=({"matchLabels": {"zone": "b"}},)),)),
     {"203.0.113.1": "n3"}),
    ("no advertisement for the pool", snap([svc(pool="q")], ads=(Advertisement("only-p", pools=frozenset({"p"})),)),
     {"203.0.113.1": None}),
    ("no ready endpoints", snap([svc(ready=())]), {"203.0.113.1": None}),
    ("nobody alive who qualifies", snap([svc(policy="Local", ready=("n1",))], alive=("n2", "n3")),
     {"203.0.113.1": None}),
])
def test_decisions(case: str, snapshot: Snapshot, expected: dict[str, str | None]) -> None:
    assert winner(snapshot) == expected, case


def test_reasons_and_interfaces() -> None:
    ads = (Advertisement("a", interfaces=frozenset({"eth0"})), Advertisement("b", interfaces=frozenset({"eth1"})))
    snapshot = snap([svc(), svc("ns/none", ("203.0.113.2",), pool="q", ready=())], ads=ads)
    node = elect("203.0.113.1", NODES)
    desired = compute(snapshot, node)
    assert desired.announcements == {"203.0.113.1": frozenset({"eth0", "eth1"})}
    reasons = {d.ip: d.reason for d in desired.decisions}
    assert reasons == {"203.0.113.1": Reason.ANNOUNCING, "203.0.113.2": Reason.NO_READY_ENDPOINTS}
    other = next(n for n in NODES if n != node)
    assert {d.ip: d.reason for d in compute(snapshot, other).decisions}["203.0.113.1"] is Reason.ANNOUNCED_BY_PEER
    assert compute(snap([svc()]), node).announcements["203.0.113.1"] == ALL_INTERFACES


@pytest.mark.parametrize("node, expected", [
    (NodeInfo("n1", {EXCLUDE_LABEL: ""}), NodeEligibility.EXCLUDED_BY_LABEL),
    (NodeInfo("n1", network_unavailable=True), NodeEligibility.NETWORK_UNAVAILABLE),
    (NodeInfo("n1", ready=False), NodeEligibility.DEAD),
    (NodeInfo("n9"), NodeEligibility.DEAD),
    (NodeInfo("n1"), NodeEligibility.ELIGIBLE),
])
def test_node_eligibility(node: NodeInfo, expected: NodeEligibility) -> None:
    assert eligibility(node, [Advertisement("all")], svc(), frozenset(NODES)) is expected


EVENTS = [
    ("nodes", "ADDED", {"metadata": {"name": n, "labels": {}}, "status": {"conditions": [
        {"type": "Ready", "status": "True"}], "addresses": [{"type": "InternalIP", "address": f"192.0.2.{i}"}]}})
    for i, n in enumerate(NODES, start=11)
] + [
    ("advertisements", "ADDED", {"metadata": {"name": "all"}, "spec": {}}),
    ("services", "ADDED", {"metadata": {"name": "a", "namespace": "ns", "annotations": {
        "ironlb.io/allocated-from-pool": "p"}}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}),
    ("services", "ADDED", {"metadata": {"name": "b", "namespace": "ns", "annotations": {
        "ironlb.io/allocated-from-pool": "p"}}, "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
        "ports": [{"port": 80}]}, "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.8"}]}}}),
    ("slices", "ADDED", {"metadata": {"name": "a-1", "namespace": "ns", "labels": {
        "kubernetes.io/service-name": "a"}}, "endpoints": [{"nodeName": "n1", "conditions": {"ready": True}}]}),
    ("slices", "ADDED", {"metadata": {"name": "b-1", "namespace": "ns", "labels": {
        "kubernetes.io/service-name": "b"}}, "endpoints": [{"nodeName": "n2", "conditions": {"ready": True}},
                                                          {"nodeName": "n3", "conditions": {"ready": False}}]}),
]


def test_event_order_does_not_change_announcements() -> None:
    results = set()
    for order in itertools.islice(itertools.permutations(EVENTS), 0, None, 97):  # ~400 of 40320 orders
        state = ClusterState()
        for kind, ev, obj in order:
            state.apply(kind, ev, obj)
        snapshot = state.snapshot(frozenset(NODES))
        results.add(tuple(sorted((me, tuple(sorted(compute(snapshot, me).announcements))) for me in NODES)))
    assert len(results) == 1
    (per_node,) = results
    owners = [ip for _, ips in per_node for ip in ips]
    assert sorted(owners) == ["203.0.113.7", "203.0.113.8"]  # each IP announced by exactly one node
    assert ("n2", ("203.0.113.8",)) in per_node or ("n2", ("203.0.113.7", "203.0.113.8")) in per_node
