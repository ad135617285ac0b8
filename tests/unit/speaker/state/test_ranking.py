"""The ranking table: owners from the alive set, the per-peer index, and copy-on-write versions."""

from __future__ import annotations

import pytest

from ironlb.core.election import elect
from ironlb.speaker.state.desired import AnnounceReason
from ironlb.speaker.state.persistent import PMap, PSet
from ironlb.speaker.state.ranking import Ranked, Table, candidates, entries, rank, rerank
from ironlb.speaker.state.snapshot import EXCLUDE_LABEL, Advertisement, NodeInfo, ServiceInfo

NODES = {n: NodeInfo(n, {"zone": "b" if n == "n4" else "a"}) for n in ("n1", "n2", "n3", "n4")}
IP = "203.0.113.9"


def svc(key: str = "ns/a", ips: tuple[str, ...] = (IP,), policy: str = "Cluster",
        ready: tuple[str, ...] = tuple(NODES), incumbent: str | None = None) -> ServiceInfo:
    """A Service in pool p (INCUMBENT: the node its Announced condition names for every IP)."""
    return ServiceInfo(key, ips, "p", traffic_policy=policy, ready_nodes=frozenset(ready),
                       incumbents=tuple((ip, incumbent) for ip in ips) if incumbent else ())


HASH_LAST = rank(IP, NODES)[-1]  # the node the hash ranks last for IP


@pytest.mark.parametrize("case, service, ads, nodes, ranking, reason", [
    ("every node, in election order", svc(), [Advertisement("all")], NODES, rank(IP, NODES), AnnounceReason.ANNOUNCING),
    ("no advertisement", svc(), [], NODES, (), AnnounceReason.NO_ADVERTISEMENT),
    ("no ready endpoint anywhere", svc(ready=()), [Advertisement("all")], NODES, (), AnnounceReason.NO_READY_ENDPOINTS),
    ("Local: only nodes with a ready endpoint", svc(policy="Local", ready=("n2", "n4")), [Advertisement("all")],
     NODES, rank(IP, ("n2", "n4")), AnnounceReason.ANNOUNCING),
    ("Local: the node announcing now keeps the IP while it has a ready endpoint",
     svc(policy="Local", incumbent=HASH_LAST), [Advertisement("all")], NODES,
     (HASH_LAST, *(n for n in rank(IP, NODES) if n != HASH_LAST)), AnnounceReason.ANNOUNCING),
    ("Local: not once it has none", svc(policy="Local", ready=tuple(n for n in NODES if n != HASH_LAST),
                                         incumbent=HASH_LAST),
     [Advertisement("all")], NODES, rank(IP, [n for n in NODES if n != HASH_LAST]), AnnounceReason.ANNOUNCING),
    ("node selector", svc(), [Advertisement("b", node_selectors=({"matchLabels": {"zone": "b"}},))], NODES,
     ("n4",), AnnounceReason.ANNOUNCING),
    ("not Ready, NetworkUnavailable, excluded: not ranked", svc(), [Advertisement("all")],
     {**NODES, "n1": NodeInfo("n1", ready=False), "n2": NodeInfo("n2", network_unavailable=True),
      "n3": NodeInfo("n3", {EXCLUDE_LABEL: ""})}, ("n4",), AnnounceReason.ANNOUNCING),
])
def test_entries(case: str, service: ServiceInfo, ads: list[Advertisement], nodes: dict[str, NodeInfo],
                 ranking: tuple[str, ...], reason: AnnounceReason) -> None:
    (entry,) = entries(service, ads, nodes)
    assert (entry.ranking, entry.reason) == (ranking, reason), case


def test_interfaces_follow_the_ranked_node() -> None:
    ads = [Advertisement("a", node_selectors=({"matchLabels": {"zone": "a"}},), interfaces=frozenset({"eth0"})),
           Advertisement("b", node_selectors=({"matchLabels": {"zone": "b"}},), interfaces=frozenset({"eth1"}))]
    (entry,) = entries(svc(), ads, NODES)
    assert [entry.interfaces_of(i) for i in range(4)] == [
        frozenset({"eth1" if n == "n4" else "eth0"}) for n in entry.ranking]
    (same,) = entries(svc(), [Advertisement("all")], NODES)
    assert len(same.interfaces) == 1  # one shared value, not one per node


@pytest.mark.parametrize("case, alive, owner", [
    ("everyone alive: the election's winner", set(NODES), elect(IP, NODES)),
    ("the winner dead: the next in the ranking", set(NODES) - {rank(IP, NODES)[0]}, rank(IP, NODES)[1]),
    ("only the last", {rank(IP, NODES)[-1]}, rank(IP, NODES)[-1]),
    ("nobody alive", set(), None),
])
def test_owner_is_the_first_alive(case: str, alive: set[str], owner: str | None) -> None:
    (entry,) = entries(svc(), [Advertisement("all")], NODES)
    index = entry.owner(alive)
    assert (entry.ranking[index] if index is not None else None) == owner, case
    decision = entry.decision(alive, "n1")
    assert decision.node == owner
    assert decision.reason is (AnnounceReason.NO_ELIGIBLE_NODE if owner is None else
                               AnnounceReason.ANNOUNCING if owner == "n1" else AnnounceReason.ANNOUNCED_BY_PEER)


def test_a_peers_death_moves_only_the_ips_it_ranks_before_me() -> None:
    ips = tuple(f"203.0.113.{i}" for i in range(1, 60))
    table = Table("n1").evolve({"ns/a": entries(svc(ips=ips), [Advertisement("all")], NODES)})
    alive = set(NODES)
    mine = set(table.announcements(alive))
    assert mine == {ip for ip in ips if elect(ip, NODES) == "n1"}
    for peer in ("n2", "n3", "n4"):  # what the fast plane's claims index on: the peers ranked before me
        ahead = {ip for ip in ips if rank(ip, NODES).index(peer) < rank(ip, NODES).index("n1")}
        gained = set(table.announcements(alive - {peer})) - mine
        assert gained and gained <= ahead
        assert set(table.announcements(alive - {peer})) >= mine  # a death never takes an IP away from me


def test_evolve_shares_what_did_not_change_and_never_mutates() -> None:
    one = Table("n1").evolve({"ns/a": entries(svc(), [Advertisement("all")], NODES)})
    two = one.evolve({"ns/b": entries(svc("ns/b", ips=("203.0.113.77",)), [Advertisement("all")], NODES)})
    assert two.services["ns/a"] is one.services["ns/a"] and "ns/b" not in one.services
    assert two.version == one.version + 1
    assert one.evolve({"ns/a": entries(svc(), [Advertisement("all")], NODES)}) is one  # equal: no new version
    three = two.evolve({}, ["ns/a"])
    assert IP not in three.by_ip and IP in two.by_ip and set(three.by_ip.changed_keys(two.by_ip)) == {IP}


def test_services_sharing_an_ip_each_keep_their_entry() -> None:
    a = Ranked("ns/a", IP, AnnounceReason.ANNOUNCING, ("n2", "n1"), (frozenset({"*"}),))
    b = Ranked("ns/b", IP, AnnounceReason.ANNOUNCING, ("n1",), (frozenset({"eth9"}),))
    table = Table("n1").evolve({"ns/a": (a,), "ns/b": (b,)})
    assert table.by_ip[IP] == (a, b)
    assert table.interfaces_for(IP, {"n1", "n2"}) == frozenset({"eth9"})
    assert table.interfaces_for(IP, {"n1"}) == frozenset({"*", "eth9"})
    assert set(table.mine) == {IP}


@pytest.mark.parametrize("case, put, drop, expected", [
    ("add", {"x": 1, "y": 2}, [], {"a": 0, "x": 1, "y": 2}),
    ("drop", {}, ["a"], {}),
    ("drop absent", {}, ["zz"], {"a": 0}),
    ("replace", {"a": 5}, [], {"a": 5}),
])
def test_pmap(case: str, put: dict[str, int], drop: list[str], expected: dict[str, int]) -> None:
    base = PMap.of({"a": 0})
    new = base.evolve(put, drop)
    assert new.to_dict() == expected and len(new) == len(expected), case
    assert base.to_dict() == {"a": 0}
    assert set(new.changed_keys(base)) == {k for k in expected.keys() | {"a"} if expected.get(k) != base.get(k)}


def test_pset() -> None:
    base = PSet().evolve(range(100), ())
    new = base.evolve([200], [5, 6, 999])
    assert set(new) == (set(range(100)) | {200}) - {5, 6} and len(new) == 99
    assert len(base) == 100 and 5 in base and 5 not in new
    assert base.evolve((), ()) is base


@pytest.mark.parametrize("case, after, moved", [
    ("a node leaves", {n: i for n, i in NODES.items() if n != "n2"}, {"n2"}),
    ("a node joins", {**NODES, "n5": NodeInfo("n5", {"zone": "a"})}, {"n5"}),
    ("a node is excluded", {**NODES, "n3": NodeInfo("n3", {EXCLUDE_LABEL: ""})}, {"n3"}),
    ("a node moves zone (other interfaces)", {**NODES, "n1": NodeInfo("n1", {"zone": "b"})}, {"n1"}),
    ("several at once", {**{n: i for n, i in NODES.items() if n != "n4"}, "n6": NodeInfo("n6", {"zone": "b"})},
     {"n4", "n6"}),
])
@pytest.mark.parametrize("policy", ["Cluster", "Local"])
def test_rerank_equals_entries_from_scratch(case: str, after: dict[str, NodeInfo], moved: set[str],
                                            policy: str) -> None:
    ads = [Advertisement("a", node_selectors=({"matchLabels": {"zone": "a"}},), interfaces=frozenset({"eth0"})),
           Advertisement("all")]
    for incumbent in (None, "n3", "n5"):  # none; a node that stays; one that only some cases make eligible
        service = svc(ips=(IP, "203.0.113.10"), policy=policy, ready=("n1", "n3", "n5", "n6"), incumbent=incumbent)
        old = entries(service, ads, NODES)
        assert rerank(old, service, moved, candidates(ads, after)) == entries(service, ads, after), (case, incumbent)


def test_rank_puts_the_incumbent_first_only_if_it_is_ranked_at_all() -> None:
    assert rank(IP, NODES, HASH_LAST)[0] == HASH_LAST and list(rank(IP, NODES, HASH_LAST)[1:]) == [
        n for n in rank(IP, NODES) if n != HASH_LAST]
    assert rank(IP, NODES, "n9") == rank(IP, NODES) == rank(IP, NODES, None)
