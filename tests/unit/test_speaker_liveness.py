"""Heartbeat protocol and membership table, with injected time."""

from __future__ import annotations

import pytest

from ironlb.speaker.liveness.membership import Change, Membership, PeerState
from ironlb.speaker.liveness.protocol import Decoded, Heartbeat, Kind, decode, encode

KEY = b"k" * 32
NOW_MS = 1_800_000_000_000


def beat(node: str = "n2", seq: int = 1, inc: int = 100, kind: Kind = Kind.ALIVE, ms: int = NOW_MS) -> Heartbeat:
    """A heartbeat."""
    return Heartbeat(kind, node, inc, seq, ms)


def test_round_trip_and_tampering() -> None:
    wire = encode(beat(), KEY)
    assert decode(wire, KEY) == (Decoded.ACCEPTED, beat())
    assert decode(wire, b"x" * 32)[0] is Decoded.BAD_MAC
    flipped = bytearray(wire)
    flipped[8] ^= 1
    assert decode(bytes(flipped), KEY)[0] is Decoded.BAD_MAC
    assert decode(wire[:20], KEY)[0] is Decoded.MALFORMED
    assert decode(b"XYZ" + wire[3:], KEY)[0] is Decoded.MALFORMED
    assert decode(wire[:3] + b"\x09" + wire[4:], KEY)[0] is Decoded.UNKNOWN_VERSION


def table() -> Membership:
    """n1's view of n2 and n3, started at t=0."""
    m = Membership(me="n1", started=0.0, timeout=0.4, grace=2.0)
    m.set_expected({"n1", "n2", "n3"})
    return m


def test_timeout_recovery_and_leave() -> None:
    m = table()
    assert m.on_message(beat("n2", 1), 0.1, NOW_MS) == (Decoded.ACCEPTED, None)
    assert m.on_message(beat("n3", 1), 0.1, NOW_MS)[0] is Decoded.ACCEPTED
    assert m.tick(0.4) == []
    assert m.tick(0.6) == [("n2", Change.HEARTBEAT_TIMEOUT), ("n3", Change.HEARTBEAT_TIMEOUT)]
    assert m.alive() == {"n1"}
    assert m.on_message(beat("n2", 2), 0.7, NOW_MS) == (Decoded.ACCEPTED, Change.RECOVERED)
    assert m.on_message(beat("n2", 3, kind=Kind.LEAVE), 0.8, NOW_MS) == (Decoded.ACCEPTED, Change.LEFT)
    assert m.peers["n2"].state is PeerState.LEFT and m.alive() == {"n1"}


@pytest.mark.parametrize("msg, verdict", [
    (beat("n2", 5), Decoded.REPLAYED),        # same sequence again
    (beat("n2", 4), Decoded.REPLAYED),        # older sequence
    (beat("n2", 1, inc=99), Decoded.REPLAYED),  # older incarnation
    (beat("n2", 1, inc=101), Decoded.ACCEPTED),  # restarted speaker: new incarnation, counter reset
    (beat("n2", 6, ms=NOW_MS - 60_000), Decoded.STALE),
    (beat("n1", 9), Decoded.FROM_SELF),
])
def test_replay_staleness_and_self(msg: Heartbeat, verdict: Decoded) -> None:
    m = table()
    m.on_message(beat("n2", 5), 0.1, NOW_MS)
    assert m.on_message(msg, 0.2, NOW_MS)[0] is verdict


def test_our_own_stall_does_not_kill_peers_whose_heartbeats_wait_unread() -> None:
    m = table()
    m.on_message(beat("n2", 1), 0.1, NOW_MS)
    m.on_message(beat("n3", 1), 0.1, NOW_MS)
    assert m.tick(0.2) == []
    assert m.tick(1.0) == []  # we did not run for 0.8 s: silence we did not listen to proves nothing
    m.on_message(beat("n2", 2), 1.01, NOW_MS)  # n2's queued heartbeat is read; n3 really went quiet
    assert m.tick(1.1) == [("n3", Change.HEARTBEAT_TIMEOUT)]
    assert m.alive() == {"n1", "n2"}


def test_never_heard_peers_get_a_grace_period() -> None:
    m = table()
    assert m.tick(1.9) == [] and m.alive() == {"n1", "n2", "n3"}
    assert sorted(m.tick(2.1)) == [("n2", Change.NEVER_HEARD), ("n3", Change.NEVER_HEARD)]
    assert m.alive() == {"n1"}
