"""Desired announcements: scenario table, and the same answer whatever order events arrive in."""

from __future__ import annotations

import random
from typing import Any

import pytest

from ironlb.core.election import elect
from ironlb.speaker.fast.announcer import Announcer, Interface, resolve
from ironlb.speaker.fast.l2.responder import Responder
from ironlb.speaker.state.cluster import ClusterState
from ironlb.speaker.state.desired import ALL_INTERFACES, AnnounceReason, NodeEligibility, compute, eligibility
from ironlb.speaker.state.incremental import IncrementalDesired
from ironlb.speaker.state.snapshot import EXCLUDE_LABEL, Advertisement, NodeInfo, ServiceInfo, Snapshot
from tests.fakeio import FakePacketIO

NODES = ("n1", "n2", "n3")
IFACES = {"eth0": Interface("eth0", 2, "02:00:00:00:00:01", "fe80::1")}


def snap(services: list[ServiceInfo], ads: tuple[Advertisement, ...] = (Advertisement("all"),),
         alive: tuple[str, ...] = NODES, nodes: dict[str, NodeInfo] | None = None) -> Snapshot:
    """A snapshot with three nodes."""
    return Snapshot(services={s.key: s for s in services},
                    nodes=nodes or {n: NodeInfo(n, {"zone": "a" if n != "n3" else "b"}) for n in NODES},
                    alive=frozenset(alive), advertisements=ads, pool_labels={"p": {"tier": "gold"}, "q": {}})


def svc(key: str = "ns/s", ips: tuple[str, ...] = ("203.0.113.1",), pool: str = "p", policy: str = "Cluster",
        ready: tuple[str, ...] = NODES, labels: dict[str, str] | None = None) -> ServiceInfo:
    """A Service with IPs."""
    return ServiceInfo(key=key, ips=ips, pool=pool, traffic_policy=policy, ready_nodes=frozenset(ready),
                       labels=tuple(sorted((labels or {}).items())))


ZONE_A, ZONE_B = ({"matchLabels": {"zone": "a"}},), ({"matchLabels": {"zone": "b"}},)
WEB = ({"matchLabels": {"app": "web"}}, {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]})
WEB_FROM_N3 = Advertisement("web", service_selectors=WEB, node_selectors=ZONE_B)


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
    # serviceSelectors (MetalLB 0.16): they filter the Services of the pools an advertisement covers.
    ("serviceSelectors: a Service matching one", snap([svc(labels={"app": "web"})], ads=(WEB_FROM_N3,)),
     {"203.0.113.1": "n3"}),
    ("serviceSelectors: any one of them may match", snap([svc(labels={"tier": "front"})], ads=(WEB_FROM_N3,)),
     {"203.0.113.1": "n3"}),
    ("serviceSelectors: a Service matching none is not announced", snap([svc(labels={"app": "db"})],
                                                                        ads=(WEB_FROM_N3,)), {"203.0.113.1": None}),
    ("serviceSelectors: a Service without labels is not announced", snap([svc()], ads=(WEB_FROM_N3,)),
     {"203.0.113.1": None}),
    ("serviceSelectors: an empty selector takes every Service", snap([svc()], ads=(
        Advertisement("any", service_selectors=({},), node_selectors=ZONE_B),)), {"203.0.113.1": "n3"}),
    ("serviceSelectors: a Service left out by one falls to an advertisement without any",
     snap([svc(labels={"app": "db"})], ads=(WEB_FROM_N3, Advertisement("rest", node_selectors=ZONE_A))),
     {"203.0.113.1": elect("203.0.113.1", ("n1", "n2"))}),
    ("serviceSelectors: the matching Service is elected among both advertisements' nodes",
     snap([svc(labels={"app": "web"})], ads=(WEB_FROM_N3, Advertisement("rest", node_selectors=ZONE_A))),
     {"203.0.113.1": elect("203.0.113.1", NODES)}),
    ("serviceSelectors apply only within the pools covered", snap([svc(pool="q", labels={"app": "web"})], ads=(
        Advertisement("web-p", pools=frozenset({"p"}), service_selectors=WEB),)), {"203.0.113.1": None}),
    ("serviceSelectors with a pool selector", snap([svc(labels={"app": "web"})], ads=(Advertisement(
        "gold-web", pool_selectors=({"matchLabels": {"tier": "gold"}},), service_selectors=WEB,
        node_selectors=ZONE_B),)), {"203.0.113.1": "n3"}),
    ("nobody alive who qualifies", snap([svc(policy="Local", ready=("n1",))], alive=("n2", "n3")),
     {"203.0.113.1": None}),
])
def test_decisions(case: str, snapshot: Snapshot, expected: dict[str, str | None]) -> None:
    assert winner(snapshot) == expected, case


def test_a_service_the_serviceselectors_leave_out_has_its_own_reason() -> None:
    snapshot = snap([svc(labels={"app": "db"}), svc("ns/other", ("203.0.113.2",), pool="q")],
                    ads=(Advertisement("web", pools=frozenset({"p"}), service_selectors=WEB),))
    reasons = {d.ip: d.reason for d in compute(snapshot, "n1").decisions}
    assert reasons == {"203.0.113.1": AnnounceReason.NO_MATCHING_ADVERTISEMENT,
                       "203.0.113.2": AnnounceReason.NO_ADVERTISEMENT}


def test_interfaces_come_from_the_advertisements_that_apply_to_the_service() -> None:
    ads = (Advertisement("web", interfaces=frozenset({"eth1"}), service_selectors=WEB),
           Advertisement("all", interfaces=frozenset({"eth0"})))
    node = elect("203.0.113.1", NODES)
    web = compute(snap([svc(labels={"app": "web"})], ads=ads), node).announcements
    other = compute(snap([svc(labels={"app": "db"})], ads=ads), node).announcements
    assert web == {"203.0.113.1": frozenset({"eth0", "eth1"})} and other == {"203.0.113.1": frozenset({"eth0"})}


def test_reasons_and_interfaces() -> None:
    ads = (Advertisement("a", interfaces=frozenset({"eth0"})), Advertisement("b", interfaces=frozenset({"eth1"})))
    snapshot = snap([svc(), svc("ns/none", ("203.0.113.2",), pool="q", ready=())], ads=ads)
    node = elect("203.0.113.1", NODES)
    desired = compute(snapshot, node)
    assert desired.announcements == {"203.0.113.1": frozenset({"eth0", "eth1"})}
    reasons = {d.ip: d.reason for d in desired.decisions}
    assert reasons == {"203.0.113.1": AnnounceReason.ANNOUNCING, "203.0.113.2": AnnounceReason.NO_READY_ENDPOINTS}
    other = next(n for n in NODES if n != node)
    by_peer = {d.ip: d.reason for d in compute(snapshot, other).decisions}["203.0.113.1"]
    assert by_peer is AnnounceReason.ANNOUNCED_BY_PEER
    assert compute(snap([svc()]), node).announcements["203.0.113.1"] == ALL_INTERFACES


@pytest.mark.parametrize("node, expected", [
    (NodeInfo("n1", {EXCLUDE_LABEL: ""}), NodeEligibility.EXCLUDED_BY_LABEL),
    # --ignore-exclude-lb (chart: speaker.ignoreExcludeLB), as MetalLB's: the label is not read.
    (NodeInfo("n1", {EXCLUDE_LABEL: ""}, exclusion_ignored=True), NodeEligibility.ELIGIBLE),
    (NodeInfo("n1", network_unavailable=True), NodeEligibility.NETWORK_UNAVAILABLE),
    (NodeInfo("n1", ready=False), NodeEligibility.DEAD),
    (NodeInfo("n9"), NodeEligibility.DEAD),
    (NodeInfo("n1"), NodeEligibility.ELIGIBLE),
])
def test_node_eligibility(node: NodeInfo, expected: NodeEligibility) -> None:
    assert eligibility(node, [Advertisement("all")], svc(), frozenset(NODES)) is expected


def _node(name: str, address: int, ready: bool = True, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "status": {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "addresses": [{"type": "InternalIP", "address": f"192.0.2.{address}"}]}}


def _service(name: str, ip: str, policy: str = "Cluster") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "annotations": {"ironlb.io/allocated-from-pool": "p"}},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": policy, "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}


def _slice(name: str, service: str, **ready: bool) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "labels": {"kubernetes.io/service-name": service}},
            "endpoints": [{"nodeName": n, "conditions": {"ready": r}} for n, r in ready.items()]}


# Each object's own events, in the order the API server would send them; objects interleave freely.
# "alive" is the heartbeats' view, a chain of its own. The final state is the same whatever the
# interleaving, so the final announcements must be too.
CHAINS: list[list[tuple[str, str, Any]]] = [
    [("nodes", "ADDED", _node("n1", 11)), ("nodes", "MODIFIED", _node("n1", 11, ready=False)),
     ("nodes", "MODIFIED", _node("n1", 11, zone="b"))],
    [("nodes", "ADDED", _node("n2", 12)), ("nodes", "MODIFIED", _node("n2", 12, **{EXCLUDE_LABEL: ""})),
     ("nodes", "MODIFIED", _node("n2", 12))],
    [("nodes", "ADDED", _node("n3", 13)), ("nodes", "DELETED", _node("n3", 13)), ("nodes", "ADDED", _node("n3", 13))],
    [("pools", "ADDED", {"metadata": {"name": "p", "labels": {}}, "spec": {"addresses": ["203.0.113.0/24"]}})],
    [("advertisements", "ADDED", {"metadata": {"name": "all"}, "spec": {}})],
    [("services", "ADDED", _service("a", "203.0.113.7")), ("services", "MODIFIED", _service("a", "203.0.113.9"))],
    [("services", "ADDED", _service("b", "203.0.113.8", "Local"))],
    [("services", "ADDED", _service("c", "203.0.113.10")), ("services", "DELETED", _service("c", "203.0.113.10"))],
    [("slices", "ADDED", _slice("a-1", "a", n1=True)), ("slices", "MODIFIED", _slice("a-1", "a", n1=True, n3=True))],
    [("slices", "ADDED", _slice("b-1", "b", n2=True, n3=False)),
     ("slices", "MODIFIED", _slice("b-1", "b", n2=False, n3=True))],
    [("alive", "", frozenset({"n1", "n3"})), ("alive", "", frozenset(NODES))],
]


def _interleaving(rng: random.Random) -> list[tuple[str, str, Any]]:
    """One random order of all the events that keeps each chain's own order."""
    queues = [list(chain) for chain in CHAINS]
    out = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        out.append(queue.pop(0))
    return out


def _announcer() -> Announcer:
    return Announcer(lambda iface: Responder(iface.name, iface.mac, FakePacketIO(), FakePacketIO(), iface.link_local))


def _final_state(order: list[tuple[str, str, Any]]) -> tuple[Any, ...]:
    """Feed ORDER to each node's incremental desired state and announcer, step by step; their end state."""
    views = {me: IncrementalDesired(me) for me in NODES}
    announcers = {me: _announcer() for me in NODES}
    alive = frozenset(NODES)
    for kind, ev, obj in order:
        if kind == "alive":
            alive = obj
        else:
            for view in views.values():
                view.apply(kind, ev, obj)
        for me, view in views.items():
            view.set_alive(alive)
            announcers[me].apply(view.publish().desired(alive).announcements, IFACES)
    return tuple((me, views[me].publish().desired(alive).decisions, tuple(sorted(announcers[me].owned().items())))
                 for me in NODES)


def test_event_order_does_not_change_announcements() -> None:
    """Any interleaving of the objects' event sequences (adds, edits, deletes, liveness changes) ends in
    the same decisions and the same announcers, and that end state is the one computed from scratch."""
    rng = random.Random(7)
    results = {_final_state(_interleaving(rng)) for _ in range(300)}
    assert len(results) == 1
    (final,) = results
    reference = ClusterState()
    for kind, ev, obj in (event for chain in CHAINS for event in chain if event[0] != "alive"):
        reference.apply(kind, ev, obj)
    snapshot = reference.snapshot(frozenset(NODES))
    for me, decisions, owned in final:
        expected = compute(snapshot, me)
        assert decisions == expected.decisions
        assert dict(owned) == {name: frozenset(ips) for name, ips in resolve(expected.announcements, IFACES).items()}
    # a's IP moved to .9, c is gone, and b's one ready endpoint (n3) is where b is announced.
    owners = {ip: me for me, _, owned in final for _, ips in owned for ip in ips}
    assert sorted(owners) == ["203.0.113.8", "203.0.113.9"]
    assert owners["203.0.113.8"] == "n3"
    # Announced from exactly one node each.
    assert len([me for me, _, owned in final if any("203.0.113.9" in ips for _, ips in owned)]) == 1


@pytest.mark.parametrize("ignore, expected", [(False, None), (True, "n1")])
def test_a_single_labelled_node_announces_only_when_the_speakers_ignore_the_label(ignore: bool,
                                                                                  expected: str | None) -> None:
    """A one-node cluster (kind, Talos) labels its only node excluded: --ignore-exclude-lb lets it announce."""
    state = ClusterState(ignore_exclude_lb=ignore)
    inc = IncrementalDesired("n1", ignore_exclude_lb=ignore)
    objects = [("nodes", {"metadata": {"name": "n1", "labels": {EXCLUDE_LABEL: ""}},
                          "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
               ("pools", {"metadata": {"name": "p"}, "spec": {"addresses": ["203.0.113.0/24"]}}),
               ("advertisements", {"metadata": {"name": "all"}, "spec": {}}),
               ("services", {"metadata": {"name": "s", "namespace": "ns"}, "spec": {"type": "LoadBalancer"},
                             "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.1"}]}}}),
               ("slices", {"metadata": {"name": "s-1", "namespace": "ns",
                                        "labels": {"kubernetes.io/service-name": "s"}},
                           "endpoints": [{"nodeName": "n1", "conditions": {"ready": True}}]})]
    for kind, obj in objects:
        state.apply(kind, "ADDED", obj)
        inc.apply(kind, "ADDED", obj)
    inc.set_alive(frozenset({"n1"}))
    for desired in (compute(state.snapshot(frozenset({"n1"})), "n1"), inc.publish().desired(frozenset({"n1"}))):
        assert [d.node for d in desired.decisions] == [expected]
        assert desired.decisions[0].reason is (AnnounceReason.ANNOUNCING if ignore else AnnounceReason.NO_ELIGIBLE_NODE)
