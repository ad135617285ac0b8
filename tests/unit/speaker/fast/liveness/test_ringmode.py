"""Ring mode over the speaker's one table: whom the Watch suspects, who is counted, and the mode it chooses.

Each scenario is a list of steps at given times: heartbeats accepted from peers (through the table, then the
ring's Watch, as the transport feeds them), ticks, and checks of the suspects and the alive set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ironlb.speaker.fast.liveness.membership import Membership
from ironlb.speaker.fast.liveness.protocol import RING_VERSION, VERSION, Decoded, Heartbeat, Kind
from ironlb.speaker.fast.liveness.ring import Ring
from ironlb.speaker.fast.liveness.ringmode import RingWatch
from ironlb.speaker.fast.liveness.upgrade import Formats, Mode
from ironlb.speaker.fast.liveness.watch import Notice, Say

ME, INCARNATION = "n00", 5
NAMES = [f"n{i:02d}" for i in range(12)]
PEERS = [name for name in NAMES if name != ME]
NEIGHBOURS = sorted(Ring(NAMES).neighbours(ME))
FAR = sorted(set(PEERS) - set(NEIGHBOURS))  # never heartbeated every interval on the ring
TIMEOUT, GRACE = 0.15, 1.0
COVERS = (("198.51.100.7", b"\x02\x00\x00\x00\x00\x07"),)


@dataclass
class Node:
    """ME's table and ring, and the sequence each peer has reached."""

    table: Membership = field(default_factory=lambda: Membership(me=ME, started=0.0, timeout=TIMEOUT, grace=GRACE,
                                                                 incarnation=INCARNATION))
    sequences: dict[str, int] = field(default_factory=dict)
    ring: RingWatch = field(init=False)

    def __post_init__(self) -> None:
        self.table.set_expected(set(PEERS))
        self.ring = RingWatch(self.table, PEERS, 0.0, lambda *_: None)
        self.ring.begin(0.0)

    def hear(self, name: str, now: float, kind: Kind = Kind.ALIVE, hold_ms: int = 0) -> None:
        """One heartbeat of NAME's, echoing our run, through the table and then the ring."""
        self.sequences[name] = self.sequences.get(name, 0) + 1
        msg = Heartbeat(kind, name, 100 + NAMES.index(name), self.sequences[name], INCARNATION, hold_ms,
                        COVERS if kind is Kind.RESTART else (), digest=0)
        verdict, change = self.table.on_message(msg, now)
        assert verdict is Decoded.ACCEPTED
        self.ring.take(msg, change, now)

    def tick(self, now: float) -> None:
        """The transport's round: the table, then the Watch."""
        self.table.tick(now)
        self.ring.tick(now)


def every_round(node: Node, names: list[str], start: float, end: float, kind: Kind = Kind.ALIVE) -> None:
    """NAMES heard every 25 ms from START to END, a tick each round."""
    now = start
    while now < end:
        for name in names:
            node.hear(name, now, kind)
        node.tick(now)
        now = round(now + 0.025, 3)


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: list  # (until, [names heard every round]) or callables on the node
    suspects: set[str]
    alive_without: set[str] = frozenset()  # type: ignore[assignment]
    held: set[str] = frozenset()  # type: ignore[assignment]


def hear_once(name: str, at: float, kind: Kind, hold_ms: int = 0):  # type: ignore[no-untyped-def]
    return lambda node: node.hear(name, at, kind, hold_ms)


SCENARIOS = [
    Scenario("every neighbour heard, the others at probe rate: no one suspected or dropped",
             [(0.0, 1.5, PEERS[:0] + NEIGHBOURS), hear_once(FAR[0], 0.5, Kind.ALIVE)], set()),
    Scenario("a neighbour silent past the timeout is suspected and dropped",
             [(0.0, 0.5, NEIGHBOURS), (0.5, 0.8, NEIGHBOURS[1:])], {NEIGHBOURS[0]}, {NEIGHBOURS[0]}),
    Scenario("a neighbour never heard is suspected once the grace period from its watch is over",
             [(0.0, 1.2, NEIGHBOURS[1:])], {NEIGHBOURS[0]}, {NEIGHBOURS[0]}),
    Scenario("a neighbour never heard is no suspect within the grace period",
             [(0.0, 0.9, NEIGHBOURS[1:])], set()),
    Scenario("a neighbour whose speaker restarts is held (counted, its IPs covered), not suspected",
             [(0.0, 0.3, NEIGHBOURS), hear_once(NEIGHBOURS[0], 0.3, Kind.RESTART, 2000),
              (0.3, 1.5, NEIGHBOURS[1:])], set(), held={NEIGHBOURS[0]}),
    Scenario("a held neighbour whose hold ends unanswered is suspected and dropped",
             [(0.0, 0.3, NEIGHBOURS), hear_once(NEIGHBOURS[0], 0.3, Kind.RESTART, 500),
              (0.3, 1.2, NEIGHBOURS[1:])], {NEIGHBOURS[0]}, {NEIGHBOURS[0]}),
    Scenario("a non-neighbour whose speaker restarts is held through the one table: counted, its IPs covered",
             [(0.0, 0.3, NEIGHBOURS), hear_once(FAR[0], 0.3, Kind.RESTART, 2000), (0.3, 1.5, NEIGHBOURS)],
             set(), held={FAR[0]}),
    Scenario("a non-neighbour that says FENCED is dropped, though the view has it alive",
             [(0.0, 0.3, NEIGHBOURS), hear_once(FAR[0], 0.3, Kind.FENCED), (0.3, 1.5, NEIGHBOURS)],
             set(), {FAR[0]}),
    Scenario("a fenced non-neighbour that says ALIVE again is counted again",
             [(0.0, 0.3, NEIGHBOURS), hear_once(FAR[0], 0.3, Kind.FENCED), hear_once(FAR[0], 0.8, Kind.ALIVE),
              (0.3, 1.5, NEIGHBOURS)], set()),
    Scenario("a non-neighbour that says goodbye is dropped at once",
             [(0.0, 0.3, NEIGHBOURS), hear_once(FAR[1], 0.3, Kind.LEAVE), (0.3, 0.4, NEIGHBOURS)],
             set(), {FAR[1]}),
    Scenario("a fenced neighbour is dropped and not suspected (it is heard)",
             [(0.0, 0.3, NEIGHBOURS), (0.3, 1.0, NEIGHBOURS[1:]),
              lambda node: every_round(node, NEIGHBOURS[:1], 0.3, 1.0, Kind.FENCED)],
             set(), {NEIGHBOURS[0]}),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_ring_mode_over_the_one_table(scenario: Scenario) -> None:
    node = Node()
    for step in scenario.steps:
        if callable(step):
            step(node)
        else:
            every_round(node, step[2], step[0], step[1])
    assert set(node.ring.watch.suspects) == scenario.suspects
    assert node.ring.alive(counts_self=True) == frozenset(NAMES) - scenario.alive_without
    assert node.table.held() == scenario.held
    assert bool(node.table.covers()) == bool(scenario.held)


def test_the_watch_reads_the_speakers_table_and_keeps_none_of_its_own() -> None:
    node = Node()
    assert node.ring.watch.membership is node.table and not node.ring.watch.owns_table
    assert node.ring.watch.neighbour_set == frozenset(NEIGHBOURS) and set(node.table.peers) == set(PEERS)


def test_the_mode_looks_at_the_old_speakers_only() -> None:
    node, formats = Node(), Formats()
    every_round(node, PEERS, 0.0, 0.2)
    assert node.ring.mode(formats, 0.2) is Mode.RING  # no peer heard in version 2
    old = FAR[0]
    formats.heard(Heartbeat(Kind.ALIVE, old, 1, 1, 0), 0.2)
    formats.sent_version_3(old, 1, 0.2)
    formats.heard(Heartbeat(Kind.ALIVE, old, 1, 2, 0), 0.5)  # still version 2 once told: an old speaker
    assert formats.old == {old} and node.ring.mode(formats, 0.5) is Mode.FULL_MESH
    formats.heard(Heartbeat(Kind.ALIVE, old, 2, 1, 0, digest=0), 0.6)  # replaced by a new speaker
    assert not formats.old and node.ring.mode(formats, 0.6) is Mode.RING
    assert formats.version_for(old) == RING_VERSION and formats.version_for(FAR[1]) == VERSION


def test_before_the_join_nothing_is_suspected() -> None:
    table = Membership(me=ME, started=0.0, timeout=TIMEOUT, grace=GRACE, incarnation=INCARNATION)
    table.set_expected(set(PEERS))
    ring = RingWatch(table, PEERS, 0.0, lambda *_: None)
    table.tick(5.0)
    assert ring.tick(5.0) == [] and not ring.watch.suspects  # listening only: no one told of anything
    ring.begin(5.0)
    table.tick(5.5)
    assert ring.tick(5.5) == [] and not ring.watch.suspects  # the neighbours' grace starts at the join
    table.tick(6.1)
    ring.tick(6.1)
    assert set(ring.watch.suspects) == set(NEIGHBOURS)


def test_a_node_that_becomes_a_neighbour_stays_counted_until_it_is_heard_or_suspected() -> None:
    node = Node()
    every_round(node, PEERS, 0.0, 0.1)  # every peer heard once, then the neighbours only
    every_round(node, NEIGHBOURS, 0.1, 0.5)
    dead = NEIGHBOURS[0]
    node.ring.watch.on_notice(Notice(Say.DEAD, NEIGHBOURS[1], dead, 100 + NAMES.index(dead), 0), 0.5)
    (new,) = node.ring.watch.neighbour_set - set(NEIGHBOURS)  # the ring moved: a node heard at probe rate only
    node.tick(0.55)
    assert node.ring.alive(counts_self=True) == frozenset(NAMES) - {dead}  # its table state is stale: not used
    every_round(node, sorted(node.ring.watch.neighbour_set), 0.55, 1.0)
    assert node.ring.alive(counts_self=True) == frozenset(NAMES) - {dead} and new not in node.ring.watch.unheard
    every_round(node, sorted(node.ring.watch.neighbour_set - {new}), 1.0, 1.3)  # now it falls silent
    assert new in node.ring.watch.suspects and new not in node.ring.alive(counts_self=True)
