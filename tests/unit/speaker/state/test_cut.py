"""Cut rankings decide as whole ones: after any Node, Service and alive-set changes, and at once (before the
control plane's next pass) when one more node dies."""

from __future__ import annotations

import random

from ironlb.speaker.state.cluster import ClusterState
from ironlb.speaker.state.cut import Cut
from ironlb.speaker.state.desired import compute
from ironlb.speaker.state.incremental import IncrementalDesired
from tests.unit.speaker.state.test_incremental import ad, endpoint_slice, node, pool, service

NAMES = tuple(f"n{i}" for i in range(10))
CUT = Cut(head=3, alive=2, worn=2)


def world() -> list[tuple[str, str, dict]]:
    """Ten nodes, one pool, twenty Cluster Services and four Local ones, every node with an endpoint."""
    events = [("nodes", "ADDED", node(n, address=i)) for i, n in enumerate(NAMES, 1)]
    events += [("pools", "ADDED", pool("p")), ("advertisements", "ADDED", ad("ad1", ("p",)))]
    for i in range(24):
        events.append(("services", "ADDED", service(f"s{i}", (f"203.0.113.{i + 1}",),
                                                    policy="Local" if i >= 20 else "Cluster")))
        events.append(("slices", "ADDED", endpoint_slice(f"s{i}-1", f"s{i}", NAMES[i % 4:])))
    return events


def decisions(inc: IncrementalDesired, alive: frozenset[str]) -> tuple:
    return inc.table.desired(alive).decisions


def test_a_cut_table_decides_as_a_whole_one_now_and_after_one_more_death() -> None:
    rng = random.Random(5)
    for _ in range(12):
        inc, reference = IncrementalDesired("n0", cut=CUT), ClusterState()
        alive = frozenset(NAMES)
        for kind, ev, obj in world():
            inc.apply(kind, ev, obj)
            reference.apply(kind, ev, obj)
        for _ in range(60):
            step = rng.random()
            if step < 0.4:
                alive = frozenset(n for n in NAMES if rng.random() < 0.6)
            else:
                name = rng.choice(NAMES)
                obj = node(name, zone=rng.choice("ab"), ready=rng.random() < 0.7, excluded=rng.random() < 0.1,
                           address=NAMES.index(name) + 1)
                inc.apply("nodes", "MODIFIED", obj)
                reference.apply("nodes", "MODIFIED", obj)
            inc.set_alive(alive)
            table = inc.publish()
            assert decisions(inc, alive) == compute(reference.snapshot(alive), "n0").decisions
            cluster = [e for key, entries in table.services.items() if int(key[4:]) < 20 for e in entries]
            assert all(len(e.ranking) <= CUT.head + CUT.alive for e in cluster)
            for dead in alive:  # before the next pass: the kept nodes alone move each IP where it belongs
                after = alive - {dead}
                assert table.desired(after).decisions == compute(reference.snapshot(after), "n0").decisions


def test_a_dead_node_changing_touches_only_the_ips_that_keep_it() -> None:
    inc = IncrementalDesired("n0", cut=CUT)
    for kind, ev, obj in world():
        inc.apply(kind, ev, obj)
    alive = frozenset(NAMES[:5])
    inc.set_alive(alive)
    before = inc.publish()
    inc.take_changed()
    inc.apply("nodes", "MODIFIED", node("n9", ready=False, address=10))  # dead, and no longer a candidate
    inc.publish()
    keeping = {key for key, entries in before.services.items() if any("n9" in e.ranking for e in entries)}
    assert keeping and keeping != set(before.services)
    assert inc.take_changed() == keeping
    inc.take_changed()
    inc.apply("nodes", "MODIFIED", node("n9", address=10))  # a candidate again, still dead: placed once alive
    inc.publish()
    assert inc.take_changed() == {f"ns/s{i}" for i in range(20, 24)}  # Local rankings (never cut) only
    inc.set_alive(alive | {"n9"})
    fresh = IncrementalDesired("n0", cut=CUT)
    for kind, ev, obj in world():
        fresh.apply(kind, ev, obj)
    fresh.set_alive(alive | {"n9"})
    placed, scratch = inc.publish(), fresh.publish()
    for now in [alive | {"n9"}, *((alive | {"n9"}) - {dead} for dead in alive | {"n9"})]:
        assert placed.desired(now) == scratch.desired(now)  # n9 placed: it takes its IPs now, and after a death


def test_an_alive_node_that_stays_a_candidate_keeps_its_places() -> None:
    inc = IncrementalDesired("n0", cut=CUT)
    for kind, ev, obj in world():
        inc.apply(kind, ev, obj)
    everyone = frozenset(NAMES)
    inc.set_alive(everyone)
    before = inc.publish()
    inc.take_changed()
    lead = before.services["ns/s0"][0].ranking[0]  # s0's owner
    keeping = {k for k, entries in before.services.items() if any(lead in e.ranking for e in entries)}
    address = NAMES.index(lead) + 1
    inc.apply("nodes", "MODIFIED", node(lead, zone="b", address=address))  # a label no advertisement reads
    assert inc.publish() is before and inc.take_changed() == set()
    inc.apply("nodes", "MODIFIED", node(lead, ready=False, address=address))  # it leaves: the IPs keeping it
    left = inc.publish()
    assert inc.take_changed() == keeping
    assert left.services["ns/s0"][0].ranking[0] != lead
    inc.apply("nodes", "MODIFIED", node(lead, address=address))  # back, alive: placed first again
    inc.publish()
    assert inc.take_changed() <= keeping
    assert inc.table.desired(everyone) == before.desired(everyone)
