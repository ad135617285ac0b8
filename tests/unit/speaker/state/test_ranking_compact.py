"""The compact Ranking reads, compares and hashes as the tuple it replaces, and tables built on it decide the same."""

from __future__ import annotations

import pickle
import random
from dataclasses import dataclass
from typing import Any

import pytest

from ironlb.speaker.fast.claims import claims_of
from ironlb.speaker.fast.nodeindex import NodeIndex
from ironlb.speaker.state.desired import AnnounceReason
from ironlb.speaker.state.ranking import Ranked, Ranking, Table, candidates, entries, rank, rerank
from ironlb.speaker.state.snapshot import Advertisement, NodeInfo, ServiceInfo

# More names than a byte can index, so rankings of both stores (bytes and array) and lookups across them occur.
UNIVERSE = [f"node-{i}" for i in range(300)]
Ranking(UNIVERSE)  # each name gets its index now, whatever runs first: the last ones are past 255


@dataclass(frozen=True)
class TupleRanked:
    """Ranked as it was: the ranking a plain tuple, and Ranked's own readers."""

    service: str
    ip: str
    reason: AnnounceReason
    ranking: tuple[str, ...] = ()
    interfaces: tuple[frozenset[str], ...] = ()
    owner = Ranked.owner
    interfaces_of = Ranked.interfaces_of
    decision = Ranked.decision


def as_tuples(put: dict[str, tuple[Ranked, ...]]) -> dict[str, tuple[Any, ...]]:
    """PUT with every entry's ranking a tuple, read by index (not by iteration)."""
    return {key: tuple(TupleRanked(e.service, e.ip, e.reason, tuple(e.ranking[i] for i in range(len(e.ranking))),
                                   e.interfaces) for e in value) for key, value in put.items()}


def readers(seq: Any, rng: random.Random) -> list[Any]:
    """What every reader of a ranking may do with it, each result (or the exception's type) in order."""
    out: list[Any] = [len(seq), list(seq), bool(seq), list(reversed(seq)), hash(seq), seq == tuple(seq)]
    out += [seq[i] for i in range(-len(seq), len(seq))]
    for _ in range(5):
        a, b = rng.randrange(-3, len(seq) + 3), rng.randrange(-3, len(seq) + 3)
        out.append(tuple(seq[a:b]))
        out.append(tuple(seq[a:b:rng.choice((1, 2, -1))]))
        out.append(tuple(seq[:a]))
    probes = [*rng.sample(UNIVERSE, 20), *seq, "never-a-node", 7, None]
    for name in probes:
        out.append(name in seq)
        try:
            out.append(seq.index(name))
        except ValueError:
            out.append(ValueError)
        out.append(seq.count(name))
    try:
        seq[len(seq)]
    except IndexError:
        out.append(IndexError)
    return out


@pytest.mark.parametrize("names", [(), ("n1",), ("n2", "n1", "n3"), tuple(UNIVERSE[::-1]), tuple(UNIVERSE[250:280])])
def test_a_ranking_equals_and_hashes_like_its_tuple(names: tuple[str, ...]) -> None:
    ranking = Ranking(names)
    assert ranking == names and names == ranking and not ranking != names  # noqa: SIM202 (__ne__ too)
    assert hash(ranking) == hash(names) and {names: 1}[ranking] == 1  # found as the tuple's key
    assert ranking == Ranking(list(names)) and hash(ranking) == hash(Ranking(iter(names)))
    assert ranking != list(names) and ranking != (*names, "zz")
    assert ranking != names[1:] or not names
    assert pickle.loads(pickle.dumps(ranking)) == ranking
    assert readers(ranking, random.Random(1)) == readers(names, random.Random(1))
    assert repr(ranking) == f"Ranking({names!r})"
    assert isinstance(ranking[1:], Ranking) and ranking[1:] == names[1:]


def test_a_slice_equals_a_ranking_of_the_same_names() -> None:
    # A slice of a wide store can hold only small indices: it must still equal (and hash as) the same names.
    wide = Ranking(["n1", UNIVERSE[299], "n2"])
    assert wide[:1] == Ranking(["n1"]) and wide[::2] == Ranking(["n1", "n2"]) and hash(wide[:1]) == hash(("n1",))


def test_ranked_takes_any_sequence_and_compares_as_before() -> None:
    ifaces = (frozenset({"*"}),)
    given = Ranked("ns/a", "203.0.113.9", AnnounceReason.ANNOUNCING, ("n2", "n1"), ifaces)
    assert type(given.ranking) is Ranking
    assert given == Ranked("ns/a", "203.0.113.9", AnnounceReason.ANNOUNCING, Ranking(["n2", "n1"]), ifaces)
    assert hash(given) == hash(Ranked("ns/a", "203.0.113.9", AnnounceReason.ANNOUNCING, ("n2", "n1"), ifaces))
    assert given != Ranked("ns/a", "203.0.113.9", AnnounceReason.ANNOUNCING, ("n1", "n2"), ifaces)
    assert pickle.loads(pickle.dumps(given)) == given
    assert Ranked("ns/a", "203.0.113.9", AnnounceReason.NO_ADVERTISEMENT).ranking == ()
    assert rank("203.0.113.9", ["n1", "n2", "n3"]) == tuple(rank("203.0.113.9", ["n3", "n1", "n2"]))


def random_world(rng: random.Random) -> tuple[dict[str, NodeInfo], list[Advertisement], list[ServiceInfo]]:
    """Nodes (some names past a byte's reach), advertisements with per-zone interfaces, Services sharing IPs."""
    names = rng.sample(UNIVERSE, rng.randrange(1, 40))
    nodes = {n: NodeInfo(n, {"zone": rng.choice("ab")}, ready=rng.random() > 0.1) for n in names}
    ads = [Advertisement("all")]
    if rng.random() < 0.5:
        ads.append(Advertisement("a", node_selectors=({"matchLabels": {"zone": "a"}},), interfaces=frozenset({"eth1"})))
    ips = [f"203.0.113.{i}" for i in range(1, 12)]
    services = [ServiceInfo(f"ns/s{s}", tuple(rng.sample(ips, rng.randrange(1, 3))), "p",
                            traffic_policy=rng.choice(("Cluster", "Local")),
                            ready_nodes=frozenset(rng.sample(names, rng.randrange(0, len(names) + 1))))
                for s in range(rng.randrange(1, 10))]
    return nodes, ads, services


def test_tables_on_rankings_decide_as_tables_on_tuples() -> None:
    # Random Services, nodes and alive sets: the table built on Rankings and the same table with every
    # ranking a tuple give the same announcements, decisions, claims and `mine`; every reader of a ranking
    # gets from it what it gets from the tuple; a rerank after nodes move equals entries from scratch.
    rng = random.Random(7)
    for _ in range(150):
        nodes, ads, services = random_world(rng)
        me = rng.choice([*nodes, "absent"])
        put = {svc.key: entries(svc, ads, nodes) for svc in services}
        for value in put.values():
            for e in value:
                assert readers(e.ranking, random.Random(3)) == readers(tuple(e.ranking), random.Random(3))
        table, plain = Table(me).evolve(put), Table(me).evolve(as_tuples(put))
        assert set(table.mine) == set(plain.mine)
        for _ in range(4):
            alive = set(rng.sample(list(nodes), rng.randrange(0, len(nodes) + 1)))
            assert table.desired(alive) == plain.desired(alive)
        ours, theirs = NodeIndex(), NodeIndex()
        for ip in table.by_ip:
            mine, reference = claims_of(table.by_ip[ip], me, ours), claims_of(plain.by_ip[ip], me, theirs)
            assert [(ours.names(c.ahead), c.interfaces) for c in mine] == \
                   [(theirs.names(c.ahead), c.interfaces) for c in reference]
        moved = set(rng.sample(UNIVERSE, 3)) | set(rng.sample(list(nodes), 1))
        after = {n: i for n, i in nodes.items() if n not in moved}
        after |= {n: NodeInfo(n, {"zone": rng.choice("ab")}) for n in moved if rng.random() < 0.5}
        for svc in services:
            reranked, scratch = rerank(put[svc.key], svc, moved, candidates(ads, after)), entries(svc, ads, after)
            assert reranked == scratch and hash(reranked) == hash(scratch)
