"""The alive set kept incrementally and the deadline heap agree with a scan of every peer, whatever happens."""

from __future__ import annotations

import random

from ironlb.speaker.fast.liveness.membership import _COUNTED, _HEARD, Change, Membership, PeerState
from ironlb.speaker.fast.liveness.protocol import Heartbeat, Kind

ME = 7
NAMES = [f"n{i}" for i in range(2, 30)]


def scanned_alive(m: Membership) -> frozenset[str]:
    """The alive set as a scan of every peer says it."""
    me = [m.me] if m.counts_self else []
    return frozenset([*me, *(p.name for p in m.peers.values() if p.state in _COUNTED)])


def scanned_expiries(m: Membership, now: float) -> set[str]:
    """Peers a scan says time out or expire at NOW (holds end, heartbeats stop, never heard)."""
    out = set()
    for p in m.peers.values():
        if p.state is PeerState.HELD and now > p.held_until:
            out.add(p.name)
        elif p.state in _HEARD:
            silent = now - m.started > m.grace if p.last_heard is None else now - p.last_heard > m.timeout
            if silent:
                out.add(p.name)
    return out


def test_random_traffic_keeps_the_alive_set_and_the_expiries_exactly_as_a_scan_says() -> None:
    rng = random.Random(25)
    m = Membership(me="n1", started=0.0, timeout=0.15, grace=0.5, incarnation=ME)
    m.set_expected({"n1", *NAMES})
    sequence = dict.fromkeys(NAMES, 0)
    now, interval = 0.0, 0.025
    for _ in range(3000):
        now += interval
        for name in rng.sample(NAMES, 8):
            sequence[name] += 1
            kind = rng.choices([Kind.ALIVE, Kind.LEAVE, Kind.FENCED, Kind.RESTART], weights=[20, 1, 2, 1])[0]
            m.on_message(Heartbeat(kind, name, 100, sequence[name], ME, hold_ms=rng.choice([50, 300])), now)
        if rng.random() < 0.01:
            m.set_expected({"n1", *rng.sample(NAMES, 20)})
        if rng.random() < 0.05:
            m.counts_self = not m.counts_self
        expected = scanned_expiries(m, now)
        changes = m.tick(now)
        assert {name for name, _ in changes} == expected
        assert all(why in (Change.HEARTBEAT_TIMEOUT, Change.NEVER_HEARD, Change.HOLD_EXPIRED) for _, why in changes)
        assert m.alive() == scanned_alive(m)
    assert len(m._checks) <= 3 * len(NAMES)  # one live entry a peer, and a few stale ones: it does not grow


def test_a_heartbeat_that_changes_nothing_leaves_the_alive_version_alone() -> None:
    m = Membership(me="n1", started=0.0, incarnation=ME)
    m.set_expected({"n1", "n2"})
    m.on_message(Heartbeat(Kind.ALIVE, "n2", 100, 1, ME), 0.0)
    version = m.alive_version()
    for seq in range(2, 50):
        m.on_message(Heartbeat(Kind.ALIVE, "n2", 100, seq, ME), seq * 0.01)
    assert m.alive_version() == version
    m.on_message(Heartbeat(Kind.FENCED, "n2", 100, 50, ME), 0.5)
    assert m.alive_version() != version and m.alive() == {"n1"}


def test_a_state_set_from_outside_still_reaches_the_alive_set_and_the_heap() -> None:
    m = Membership(me="n1", started=0.0, timeout=0.15, incarnation=ME)
    m.set_expected({"n1", "n2"})
    m.tick(3.0)
    assert m.alive() == {"n1"}
    m.peers["n2"].state, m.peers["n2"].last_heard = PeerState.ALIVE, 3.0
    assert m.alive() == {"n1", "n2"}
    assert m.tick(3.1) == [] and m.tick(3.2) == [("n2", Change.HEARTBEAT_TIMEOUT)]
