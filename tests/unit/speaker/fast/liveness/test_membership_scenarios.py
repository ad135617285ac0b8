"""Membership scenario tables: each scenario is a list of steps run in order against one restarted speaker.

The speaker is "b" (this run: incarnation B); its peer "a" runs incarnation A_NOW, and an attacker holds
authentic recordings of a's earlier runs (A_OLD, A_OLDER, ...) and of earlier datagrams of this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ironlb.speaker.fast.liveness.membership import ECHO_CANDIDATES, Change, Membership, PeerState
from ironlb.speaker.fast.liveness.protocol import Decoded, Heartbeat, Kind

B, A_NOW, A_OLD, A_OLDER = 22, 11, 7, 5
A_ADDR = "192.0.2.11"
U, OK, RP = Decoded.UNECHOED, Decoded.ACCEPTED, Decoded.REPLAYED


@dataclass(frozen=True)
class Hear:
    """A datagram from a: (incarnation, sequence, echo) and the verdict expected."""

    incarnation: int
    sequence: int
    echo: int
    verdict: Decoded
    change: Change | None = None


@dataclass(frozen=True)
class Echoes:
    """The next N heartbeats b sends to a echo exactly these incarnations (as a set)."""

    n: int
    expected: frozenset[int]


@dataclass(frozen=True)
class State:
    """a's state in b's table, and its proven incarnation (-1: none yet)."""

    state: PeerState
    incarnation: int


Step = Hear | Echoes | State


def echoes(n: int, *incarnations: int) -> Echoes:
    """The next N echoes name exactly INCARNATIONS."""
    return Echoes(n, frozenset(incarnations))


def old_runs(count: int, sequence: int) -> list[Step]:
    """Recordings of COUNT distinct earlier runs of a's, each at SEQUENCE."""
    return [Hear(100 + i, sequence, 0, U) for i in range(count)]


SCENARIOS: dict[str, list[Step]] = {
    "a fresh peer is echoed as heard, and proves itself by echoing us": [
        echoes(3, 0),
        Hear(A_NOW, 1, 0, U), echoes(3, A_NOW),
        Hear(A_NOW, 2, B, OK, Change.PROVEN), State(PeerState.ALIVE, A_NOW), echoes(3, A_NOW),
    ],
    "a replay of a previous run after each real datagram never displaces the real run from the echo": [
        Hear(A_NOW, 1, 0, U), Hear(A_OLD, 900, 0, U), echoes(2, A_NOW, A_OLD),
        Hear(A_NOW, 2, 0, U), Hear(A_OLD, 901, 0, U), echoes(2, A_NOW, A_OLD),
        Hear(A_NOW, 3, 0, U), Hear(A_OLD, 902, 0, U), Hear(A_OLD, 903, 0, U), echoes(2, A_NOW, A_OLD),
        Hear(A_NOW, 4, B, OK, Change.PROVEN), State(PeerState.ALIVE, A_NOW),
    ],
    "once a run is proven, replays of other runs change nothing": [
        Hear(A_NOW, 1, 0, U), Hear(A_NOW, 2, B, OK, Change.PROVEN),
        Hear(A_OLD, 900, 0, U), Hear(A_OLDER, 50, 0, U), echoes(4, A_NOW),
        Hear(A_OLD, 901, B, OK, Change.NEW_INCARNATION),  # it echoes this run: made now, so a real restart
        echoes(2, A_OLD),
        Hear(A_NOW, 3, B, RP),  # the run it left is retired: its recordings never pass again
        Hear(A_NOW, 4, 0, U), echoes(2, A_OLD),
    ],
    "a recording of a datagram already heard does not refresh its run": [
        *old_runs(ECHO_CANDIDATES - 1, 10), Hear(A_NOW, 5, 0, U),
        Hear(100, 9, 0, U), Hear(100, 10, 0, U),  # not newer than the one heard: 100 stays least recent
        Hear(A_OLD, 1, 0, U),  # one run too many: the least recently refreshed (100) is forgotten
        echoes(ECHO_CANDIDATES, A_NOW, A_OLD, *range(101, 100 + ECHO_CANDIDATES - 1)),
    ],
    "the real run, heard in every round, survives as many other runs as the table holds": [
        *[step for r in range(3) for step in
          (Hear(A_NOW, 1 + r, 0, U), *old_runs(ECHO_CANDIDATES - 1, 10 + r))],
        echoes(ECHO_CANDIDATES, A_NOW, *range(100, 100 + ECHO_CANDIDATES - 1)),
    ],
    "a run of a's we saw replaced is never echoed again": [
        Hear(A_OLD, 1, 0, U), Hear(A_OLD, 2, B, OK, Change.PROVEN),
        Hear(A_NOW, 1, B, OK, Change.NEW_INCARNATION),
        Hear(A_OLD, 3, 0, U), echoes(3, A_NOW),
    ],
}


def run_step(m: Membership, step: Step, now: float) -> None:
    """Apply one step to M and check what it expects."""
    if isinstance(step, Hear):
        msg = Heartbeat(Kind.ALIVE, "a", step.incarnation, step.sequence, step.echo)
        assert m.on_message(msg, now, A_ADDR) == (step.verdict, step.change), step
    elif isinstance(step, Echoes):
        assert {m.echo_for("a") for _ in range(step.n)} == step.expected, step
    else:
        peer = m.peers["a"]
        assert (peer.state, peer.incarnation) == (step.state, step.incarnation), step


@pytest.mark.parametrize("name", SCENARIOS)
def test_membership_scenario(name: str) -> None:
    m = Membership(me="b", started=0.0, incarnation=B)
    m.set_expected({"a", "b"}, {"a": {A_ADDR}})
    for i, step in enumerate(SCENARIOS[name]):
        run_step(m, step, 0.01 * i)


def test_a_restarted_speaker_verifies_its_peer_within_a_second_while_every_datagram_is_followed_by_a_replay() -> None:
    """Two speakers at the default interval; after each of a's heartbeats to b, b also receives a recording
    of a's previous run. Both must prove each other within one second (the echo rotation), and stay alive."""
    interval = 0.025
    a = Membership(me="a", started=0.0, incarnation=A_NOW)
    b = Membership(me="b", started=0.0, incarnation=B)
    a.set_expected({"a", "b"}, {"b": {"192.0.2.12"}})
    b.set_expected({"a", "b"}, {"a": {A_ADDR}})
    a.on_message(Heartbeat(Kind.ALIVE, "b", 999, 1, A_NOW), 0.0, "192.0.2.12")  # b's previous run, proven
    proven_at = None
    for n in range(1, 400):
        now = n * interval
        b.on_message(Heartbeat(Kind.ALIVE, "a", A_NOW, n, a.echo_for("b")), now, A_ADDR)
        b.on_message(Heartbeat(Kind.ALIVE, "a", A_OLD, 5000 + n, 0), now, A_ADDR)  # the replay, right after
        a.on_message(Heartbeat(Kind.ALIVE, "b", B, n, b.echo_for("a")), now, "192.0.2.12")
        a.tick(now), b.tick(now)
        if proven_at is None and a.peers["b"].incarnation == B and b.peers["a"].incarnation == A_NOW:
            proven_at = now
    assert proven_at is not None and proven_at <= 1.0, proven_at
    assert a.alive() == b.alive() == {"a", "b"}
