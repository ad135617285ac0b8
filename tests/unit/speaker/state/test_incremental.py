"""The incremental table equals the from-scratch `compute` after any sequence of watch events and liveness changes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ironlb.api.conditions import announced_part, condition
from ironlb.api.constants import LB_CLEANUP_FINALIZER
from ironlb.api.reasons import ConditionType
from ironlb.core.election import score
from ironlb.speaker.state import slim
from ironlb.speaker.state.cluster import ClusterState
from ironlb.speaker.state.cut import Cut
from ironlb.speaker.state.desired import AnnounceReason, compute
from ironlb.speaker.state.incremental import IncrementalDesired
from ironlb.speaker.state.ranking import Table
from ironlb.speaker.state.snapshot import EXCLUDE_LABEL

NODES = ("n1", "n2", "n3", "n4")
ME = "n1"
POOL_ANNOTATION = "ironlb.io/allocated-from-pool"


def node(name: str, zone: str = "a", ready: bool = True, unavailable: bool = False, excluded: bool = False,
         address: int = 1) -> dict[str, Any]:
    """A Node object."""
    labels = {"zone": zone, **({EXCLUDE_LABEL: ""} if excluded else {})}
    conditions = [{"type": "Ready", "status": str(ready)}, {"type": "NetworkUnavailable", "status": str(unavailable)}]
    addresses = [{"type": "InternalIP", "address": f"192.0.2.{address}"}]
    return {"metadata": {"name": name, "labels": labels}, "status": {"conditions": conditions, "addresses": addresses}}


def service(name: str, ips: tuple[str, ...], pool: str | None = "p", policy: str = "Cluster",
            lb: bool = True, app: str | None = None, going: bool = False) -> dict[str, Any]:
    """A Service object with ingress IPs (APP: its app label; GOING: it keeps the cleanup finalizer, and is
    deleted when LB, else changed away from LoadBalancer)."""
    annotations = {POOL_ANNOTATION: pool} if pool else {}
    labels = {"app": app} if app else {}
    going_meta: dict[str, Any] = {"finalizers": [LB_CLEANUP_FINALIZER]} if going else {}
    if going and lb:
        going_meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": {"name": name, "namespace": "ns", "annotations": annotations, "labels": labels,
                         **going_meta},
            "spec": {"type": "LoadBalancer" if lb else "ClusterIP", "externalTrafficPolicy": policy,
                     "ports": [{"port": 80, "nodePort": 30080}]},
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}}


def endpoint_slice(name: str, svc: str, ready: tuple[str, ...], unready: tuple[str, ...] = ()) -> dict[str, Any]:
    """An EndpointSlice of Service SVC."""
    eps = [{"nodeName": n, "conditions": {"ready": True}} for n in ready]
    eps += [{"nodeName": n, "conditions": {"ready": False}} for n in unready]
    return {"metadata": {"name": name, "namespace": "ns", "labels": {"kubernetes.io/service-name": svc}},
            "endpoints": eps}


def pool(name: str, tier: str | None = None, forwarding: str = "KubeProxy",
         addresses: tuple[str, ...] = ("203.0.113.0/24",)) -> dict[str, Any]:
    """An IPAddressPool object."""
    return {"metadata": {"name": name, "labels": {"tier": tier} if tier else {}},
            "spec": {"addresses": list(addresses), "forwarding": forwarding}}


def ad(name: str, pools: tuple[str, ...] = (), zone: str | None = None, tier: str | None = None,
       interfaces: tuple[str, ...] = (), apps: tuple[str, ...] = ()) -> dict[str, Any]:
    """An L2Advertisement object (APPS: serviceSelectors, one per app label value)."""
    spec: dict[str, Any] = {"ipAddressPools": list(pools), "interfaces": list(interfaces)}
    if apps:
        spec["serviceSelectors"] = [{"matchLabels": {"app": app}} for app in apps]
    if zone:
        spec["nodeSelectors"] = [{"matchLabels": {"zone": zone}}]
    if tier:
        spec["ipAddressPoolSelectors"] = [{"matchLabels": {"tier": tier}}]
    return {"metadata": {"name": name}, "spec": spec}


IPS = ("203.0.113.1", "203.0.113.2", "2001:db8::1")
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "nodes": [node(n, zone=z, ready=r, unavailable=u, excluded=x, address=a)
              for n in NODES for z, r, u, x, a in [("a", True, False, False, 1), ("b", True, False, False, 2),
                                                   ("a", False, False, False, 1), ("a", True, True, False, 1),
                                                   ("a", True, False, True, 1), ("a", True, False, False, 7)]],
    "services": [service(s, ips, pool=p, policy=pol, lb=lb, app=app)
                 for s in ("s1", "s2", "s3")
                 for ips, p, pol, lb, app in [
                     ((IPS[0],), "p", "Cluster", True, None), ((IPS[0],), "p", "Local", True, None),
                     ((IPS[1], IPS[2]), "q", "Cluster", True, None), ((IPS[1],), None, "Cluster", True, None),
                     ((IPS[0],), "p", "Cluster", False, None), ((), "p", "Cluster", True, None),
                     ((IPS[2], IPS[0]), "q", "Local", True, None), ((IPS[2],), "q", "Cluster", True, None),
                     # Labels that serviceSelectors pick, or leave out.
                     ((IPS[0],), "p", "Cluster", True, "web"), ((IPS[1], IPS[2]), "q", "Cluster", True, "db"),
                     ((IPS[2], IPS[0]), "q", "Local", True, "web")]]
    # Going, with the cleanup finalizer: deleted, or changed to ClusterIP (the API server clears the ingress).
    + [service(s, ips, pool=p, lb=lb, going=True) for s in ("s1", "s2", "s3")
       for ips, p, lb in [((IPS[0],), "p", True), ((), "p", False), ((IPS[1], IPS[2]), "q", True)]],
    "slices": [endpoint_slice(f"{s}-{i}", s2, r, u)
               for s in ("s1", "s2", "s3") for i in (1, 2)
               for s2, r, u in [(s, ("n1",), ()), (s, ("n2", "n3"), ("n1",)), (s, (), ("n4",)), ("s1", ("n4",), ()),
                                (s, NODES, ())]],
    # Pools whose addresses hold an IP or not, overlap or not, and an invalid edit (the last valid one stays).
    "pools": [pool(p, tier, fwd, addresses) for p in ("p", "q")
              for tier, fwd, addresses in [(None, "KubeProxy", ("203.0.113.0/24",)),
                                           ("gold", "NodePort", ("203.0.113.0/24",)),
                                           (None, "KubeProxy", ("2001:db8::/64",)),
                                           ("gold", "KubeProxy", ("203.0.113.2/32", "2001:db8::1-2001:db8::9")),
                                           (None, "KubeProxy", ("not-an-address",))]],
    "advertisements": [ad(name, *variant) for name in ("ad1", "ad2", "ad3")
                       for variant in [(), (("p",),), (("q",), "b"), ((), None, "gold", ("eth1",)),
                                       (("p", "q"), "a", None, ("eth0",)),
                                       # serviceSelectors: one app, or either of two, from zone b or anywhere
                                       (("p", "q"), "b", None, (), ("web",)),
                                       ((), None, None, ("eth1",), ("db", "web"))]],
}
event = st.one_of(
    st.tuples(st.sampled_from(sorted(VARIANTS)), st.sampled_from(["ADDED", "MODIFIED", "DELETED"]),
              st.integers(min_value=0, max_value=59)).map(
        lambda t: (t[0], t[1], VARIANTS[t[0]][t[2] % len(VARIANTS[t[0]])])),
    st.tuples(st.just("alive"), st.just(""), st.frozensets(st.sampled_from(NODES))),
    st.tuples(st.just("publish"), st.just(""), st.none()),
)


BASE = [
    *(("nodes", "ADDED", node(n, zone="b" if n == "n4" else "a", address=i)) for i, n in enumerate(NODES, 1)),
    ("pools", "ADDED", pool("p")), ("pools", "ADDED", pool("q", "gold")),
    # Pool q by label on zone a (eth0), and by name on zone b (eth1): interfaces differ per ranked node.
    ("advertisements", "ADDED", ad("ad1", ("p",))), ("advertisements", "ADDED", ad("ad2", (), "a", "gold", ("eth0",))),
    ("advertisements", "ADDED", ad("ad3", ("q",), "b", None, ("eth1",))),
    ("services", "ADDED", service("s1", (IPS[0],))), ("services", "ADDED", service("s2", (IPS[0],), policy="Local")),
    ("services", "ADDED", service("s3", (IPS[1], IPS[2]), pool="q")),
    *(("slices", "ADDED", endpoint_slice(f"{s}-1", s, NODES)) for s in ("s1", "s3")),
    ("slices", "ADDED", endpoint_slice("s2-1", "s2", ("n1", "n3"))),
]


def brute_force_mine(table: Table) -> set[str]:
    """The IPs with an entry that ranks me, from every entry."""
    return {ip for ip, ranked in table.by_ip.items() if any(ME in e.ranking for e in ranked)}


def check(inc: IncrementalDesired, reference: ClusterState, alive: frozenset[str]) -> None:
    """Table (and its indexes) agree with compute() on the reference state, from scratch."""
    inc.set_alive(alive)
    table = inc.publish()
    expected = compute(reference.snapshot(alive), ME)
    got = table.desired(alive)
    assert got.decisions == expected.decisions
    assert got.announcements == expected.announcements
    mine = brute_force_mine(table)
    assert set(table.mine) == mine and len(table.mine) == len(mine)
    assert table.services.to_dict().keys() == {k for k, e in table.services.items() if e}
    assert len(table.by_ip) == len(table.by_ip.to_dict())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, max_size=40), st.sampled_from([Cut(), Cut(head=1, alive=1, worn=1), Cut(head=2, alive=1)]))
def test_incremental_equals_from_scratch(events: list[tuple[str, str, Any]], cut: Cut) -> None:
    # The default cut keeps every node of four; the others cut (a head of one or two, a tail of one alive).
    inc, reference, alive = IncrementalDesired(ME, cut=cut), ClusterState(), frozenset(NODES)
    tables = []
    # From a cluster where every Service is announced somewhere (random events alone rarely build one).
    for kind, ev, obj in [*BASE, ("publish", "", None), *events]:
        if kind == "alive":
            alive = obj
        elif kind != "publish":
            inc.apply(kind, ev, obj)
            reference.apply(kind, ev, obj)
            continue
        tables.append(inc.table)
        check(inc, reference, alive)
    before = [t.desired(alive) for t in tables]
    check(inc, reference, alive)
    assert [t.desired(alive) for t in tables] == before  # published tables were never mutated


def _setup(inc: IncrementalDesired) -> None:
    for obj in (pool("p"), pool("q", "gold"), ad("ad1")):
        inc.apply("pools" if "addresses" in obj.get("spec", {}) else "advertisements", "ADDED", obj)
    for i, n in enumerate(NODES, 1):
        inc.apply("nodes", "ADDED", node(n, address=i))
    inc.apply("services", "ADDED", service("s1", (IPS[0],)))
    inc.apply("services", "ADDED", service("s2", (IPS[1],), pool="q", policy="Local"))
    inc.apply("slices", "ADDED", endpoint_slice("s1-1", "s1", NODES))
    inc.apply("slices", "ADDED", endpoint_slice("s2-1", "s2", ("n2",)))
    inc.publish()


@pytest.mark.parametrize("case, kind, obj, recomputed", [
    ("a slice change recomputes its Service only", "slices", endpoint_slice("s2-1", "s2", ("n3",)), {"ns/s2"}),
    ("a Service change recomputes itself only", "services", service("s1", (IPS[2],)), {"ns/s1"}),
    ("a Node's address change recomputes nothing", "nodes", node("n2", address=9), set()),
    ("a Node's label change re-ranks every Service", "nodes", node("n2", zone="b"), {"ns/s1", "ns/s2"}),
    ("a pool's label change: its Services only", "pools", pool("q", "silver"), {"ns/s2"}),
    ("a pool's forwarding change: nothing to rank", "pools", pool("p", forwarding="NodePort"), set()),
    ("an advertisement of pool q only", "advertisements", ad("ad2", ("q",), interfaces=("eth1",)), {"ns/s2"}),
    ("a Service's label change: itself only", "services", service("s1", (IPS[0],), app="web"), {"ns/s1"}),
    ("the same Service again (a relist): nothing", "services", service("s1", (IPS[0],)), set()),
    ("the same slice again: nothing", "slices", endpoint_slice("s1-1", "s1", NODES), set()),
    ("a slice's unready endpoint only: nothing", "slices", endpoint_slice("s1-1", "s1", NODES, ("n9",)), set()),
])
def test_what_an_event_recomputes(case: str, kind: str, obj: dict[str, Any], recomputed: set[str]) -> None:
    inc = IncrementalDesired(ME)
    _setup(inc)
    old = inc.table
    inc.apply(kind, "MODIFIED", obj)
    assert (inc._dirty | inc._reranked | (set(inc.infos) if inc._moved else set())) == recomputed, case
    new = inc.publish()
    for key in set(old.services) - recomputed:
        assert new.services[key] is old.services[key], (case, key)
    if not recomputed:
        assert new is old, case  # nothing touched: no new version at all  # untouched entries are shared, not copied


def test_a_published_table_is_a_new_object_only_when_something_changed() -> None:
    inc = IncrementalDesired(ME)
    _setup(inc)
    table = inc.table
    inc.apply("services", "MODIFIED", service("s1", (IPS[0],)))
    assert inc.publish() is table
    inc.apply("services", "DELETED", service("s1", (IPS[0],)))
    assert inc.publish() is not table and "ns/s1" in table.services and "ns/s1" not in inc.table.services


def test_an_object_handed_back_unchanged_keeps_the_held_copy_and_costs_nothing() -> None:
    # The informer keeps versions only: the copy held stays, the one handed back is garbage at once.
    inc = IncrementalDesired(ME)
    _setup(inc)
    table, held, again = inc.table, inc.state.services["ns/s1"], service("s1", (IPS[0],))
    assert again is not held and again == held
    inc.apply("services", "MODIFIED", again)
    assert inc.state.services["ns/s1"] is held
    assert inc.publish() is table


def test_slices_are_held_as_their_service_and_ready_nodes_only() -> None:
    inc = IncrementalDesired(ME)
    _setup(inc)
    inc.apply("slices", "ADDED", endpoint_slice("s1-2", "s1", ("n2",), ("n4",)))
    inc.publish()
    assert inc.infos["ns/s1"].ready_nodes == frozenset(NODES)  # the union of its two slices
    assert inc.infos["ns/s2"].ready_nodes is dict(inc._ready["ns/s2"])["ns/s2-1"]  # one slice: its own set, no copy
    inc.apply("slices", "DELETED", endpoint_slice("s2-1", "s2", ("n2",)))
    inc.apply("slices", "MODIFIED", endpoint_slice("s1-2", "other", ("n2",)))  # moved to another Service
    inc.publish()
    assert "ns/s2" not in inc._ready and inc._slices == {"ns/s1-1": "ns/s1", "ns/s1-2": "ns/other"}
    assert inc.infos["ns/s1"].ready_nodes == frozenset(NODES)
    assert inc.table.services["ns/s2"][0].reason is AnnounceReason.NO_READY_ENDPOINTS


def test_steering_targets_follow_each_slice_a_pod_replaced_on_the_same_node_included() -> None:
    inc = IncrementalDesired("n1")
    _setup(inc)
    addressed = {**endpoint_slice("s1-1", "s1", ("n1", "n2")), "addressType": "IPv4",
                 "ports": [{"name": "", "protocol": "TCP", "port": 8080}], "addresses": ["198.19.1.5", "198.19.2.5"]}
    inc.apply("slices", "MODIFIED", slim.endpoint_slice(addressed))
    assert [list(t.endpoints()) for t in inc.targets("ns/s1")] == [[("n1", "198.19.1.5"), ("n2", "198.19.2.5")]]
    inc.publish()
    replaced = {**addressed, "addresses": ["198.19.1.5", "198.19.2.9"]}  # same nodes: nothing to re-rank
    inc.apply("slices", "MODIFIED", slim.endpoint_slice(replaced))
    assert inc._dirty == set()
    assert [list(t.endpoints()) for t in inc.targets("ns/s1")] == [[("n1", "198.19.1.5"), ("n2", "198.19.2.9")]]
    inc.apply("slices", "DELETED", replaced)
    assert inc.targets("ns/s1") == []


def announced_by(obj: dict[str, Any], ip: str, node_name: str) -> dict[str, Any]:
    """OBJ with the Announced condition a speaker writes when NODE_NAME announces IP."""
    cond = condition(ConditionType.SERVICE_ANNOUNCED, True, AnnounceReason.ANNOUNCING,
                     announced_part(ip, node_name, None), since="t")
    return {**obj, "status": {**obj["status"], "conditions": [cond]}}


def test_a_local_services_announcing_node_keeps_its_ip_as_other_nodes_become_ready() -> None:
    """Pods becoming ready on nodes the hash prefers do not pull a Local Service's IP away from the node that
    announces it (each move cuts connections); once that node has no ready endpoint, the hash decides again."""
    inc = IncrementalDesired(ME)
    _setup(inc)
    inc.apply("slices", "MODIFIED", endpoint_slice("s2-1", "s2", NODES))
    by_hash = inc.publish().by_ip.get(IPS[1])[0].ranking
    last = by_hash[-1]
    inc.apply("slices", "MODIFIED", endpoint_slice("s2-1", "s2", (last,)))
    inc.apply("services", "MODIFIED", announced_by(service("s2", (IPS[1],), pool="q", policy="Local"), IPS[1], last))
    assert inc.publish().by_ip.get(IPS[1])[0].ranking == (last,)
    inc.apply("slices", "MODIFIED", endpoint_slice("s2-1", "s2", NODES))  # every other node's pod is ready now
    assert inc.publish().by_ip.get(IPS[1])[0].ranking[0] == last
    inc.apply("slices", "MODIFIED", endpoint_slice("s2-1", "s2", tuple(n for n in NODES if n != last)))
    assert inc.publish().by_ip.get(IPS[1])[0].ranking == tuple(n for n in by_hash if n != last)
    # A Cluster Service follows the hash whatever its condition says.
    inc.apply("services", "MODIFIED", announced_by(service("s1", (IPS[0],)), IPS[0], "n4"))
    assert inc.publish().by_ip.get(IPS[0])[0].ranking == tuple(sorted(NODES, key=lambda n: score(n, IPS[0])))


SELECTED = [  # serviceSelectors: the ads and the Services' labels change, each step checked against compute()
    ("advertisements", "MODIFIED", ad("ad1", ("p", "q"), "b", None, (), ("web",))),
    ("services", "MODIFIED", service("s1", (IPS[0],), app="web")),
    ("services", "MODIFIED", service("s3", (IPS[1], IPS[2]), pool="q", app="db")),
    ("advertisements", "MODIFIED", ad("ad3", (), None, None, ("eth1",), ("db", "web"))),
    ("nodes", "MODIFIED", node("n1", zone="b", address=1)),
    ("services", "MODIFIED", service("s1", (IPS[0],), app="db")),
    ("advertisements", "DELETED", ad("ad3")),
    ("nodes", "MODIFIED", node("n4", zone="a", address=4)),
    ("services", "MODIFIED", service("s1", (IPS[0],))),
]


@pytest.mark.parametrize("cut", [Cut(), Cut(head=1, alive=1, worn=1)])
def test_service_selectors_incremental_equals_from_scratch(cut: Cut) -> None:
    inc, reference, alive = IncrementalDesired(ME, cut=cut), ClusterState(), frozenset(NODES)
    seen = []
    for kind, ev, obj in [*BASE, *SELECTED]:
        inc.apply(kind, ev, obj)
        reference.apply(kind, ev, obj)
        check(inc, reference, alive)
        seen.append({d.service for d in inc.table.desired(alive).decisions
                     if d.reason is AnnounceReason.NO_MATCHING_ADVERTISEMENT})
    # s2 (no labels) is left out once ad1 selects app=web; s1 in and out as its label changes.
    assert seen[len(BASE):] == [{"ns/s1", "ns/s2"}, {"ns/s2"}, {"ns/s2"}, {"ns/s2"}, {"ns/s2"}, {"ns/s2"},
                                {"ns/s1", "ns/s2"}, {"ns/s1", "ns/s2"}, {"ns/s1", "ns/s2"}]
