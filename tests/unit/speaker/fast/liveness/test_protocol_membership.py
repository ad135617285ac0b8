"""Heartbeat protocol and membership table, with injected time."""

from __future__ import annotations

import pytest

from ironlb.speaker.fast.liveness.membership import Change, Membership, PeerState
from ironlb.speaker.fast.liveness.protocol import Decoded, Heartbeat, Kind, decode, encode

KEY = b"k" * 32
ME = 7  # n1's incarnation in these tests
ADDRESSES = {"n2": {"192.0.2.12"}, "n3": {"192.0.2.13"}}


def beat(node: str = "n2", seq: int = 1, inc: int = 100, kind: Kind = Kind.ALIVE, echo: int = ME) -> Heartbeat:
    """A heartbeat to n1 (echoing n1's run unless told otherwise)."""
    return Heartbeat(kind, node, inc, seq, echo)


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
    m = Membership(me="n1", started=0.0, timeout=0.4, grace=2.0, incarnation=ME)
    m.set_expected({"n1", "n2", "n3"}, ADDRESSES)
    return m


def test_timeout_recovery_and_leave() -> None:
    m = table()
    assert m.on_message(beat("n2", 1), 0.1) == (Decoded.ACCEPTED, Change.PROVEN)
    assert m.on_message(beat("n3", 1), 0.1)[0] is Decoded.ACCEPTED
    assert m.tick(0.4) == []
    assert m.tick(0.6) == [("n2", Change.HEARTBEAT_TIMEOUT), ("n3", Change.HEARTBEAT_TIMEOUT)]
    assert m.alive() == {"n1"}
    assert m.on_message(beat("n2", 2), 0.7) == (Decoded.ACCEPTED, Change.RECOVERED)
    assert m.on_message(beat("n2", 3, kind=Kind.LEAVE), 0.8) == (Decoded.ACCEPTED, Change.LEFT)
    assert m.peers["n2"].state is PeerState.LEFT and m.alive() == {"n1"}


@pytest.mark.parametrize("msg, verdict", [
    (beat("n2", 5), Decoded.REPLAYED),        # same sequence again
    (beat("n2", 4), Decoded.REPLAYED),        # older sequence
    (beat("n2", 9, inc=99), Decoded.REPLAYED),  # an incarnation it has since left behind
    (beat("n2", 1, inc=101), Decoded.ACCEPTED),  # restarted speaker: new (random) incarnation, counter reset
    (beat("n2", 6, echo=6), Decoded.UNECHOED),  # made for an earlier run of ours (or recorded then)
    (beat("n2", 6, echo=0), Decoded.UNECHOED),  # made before it heard us
    (beat("n1", 9), Decoded.FROM_SELF),
    (beat("n9", 1), Decoded.UNKNOWN_PEER),
])
def test_replay_echo_and_self(msg: Heartbeat, verdict: Decoded) -> None:
    m = table()
    m.on_message(beat("n2", 3, inc=99), 0.05)
    m.on_message(beat("n2", 5), 0.1)
    assert m.on_message(msg, 0.2, "192.0.2.12")[0] is verdict


def test_our_own_stall_does_not_kill_peers_whose_heartbeats_wait_unread() -> None:
    m = table()
    m.on_message(beat("n2", 1), 0.1)
    m.on_message(beat("n3", 1), 0.1)
    assert m.tick(0.2) == []
    assert m.tick(1.0) == []  # we did not run for 0.8 s: silence we did not listen to proves nothing
    m.on_message(beat("n2", 2), 1.01)  # n2's queued heartbeat is read; n3 really went quiet
    assert m.tick(1.1) == [("n3", Change.HEARTBEAT_TIMEOUT)]
    assert m.alive() == {"n1", "n2"}


def test_never_heard_peers_get_a_grace_period() -> None:
    m = table()
    assert m.tick(1.9) == [] and m.alive() == {"n1", "n2", "n3"}
    assert sorted(m.tick(2.1)) == [("n2", Change.NEVER_HEARD), ("n3", Change.NEVER_HEARD)]
    assert m.alive() == {"n1"}


def test_the_named_node_must_be_the_sender() -> None:
    m = table()
    assert m.on_message(beat("n2", 1), 0.1, "192.0.2.13")[0] is Decoded.WRONG_SOURCE  # n3 claiming to be n2
    assert m.on_message(beat("n2", 1), 0.1, "::ffff:192.0.2.12")[0] is Decoded.ACCEPTED  # dual-stack socket form


def test_no_clock_is_compared_between_nodes() -> None:
    """Nothing in a heartbeat is a time: a peer's clock set years off or stepped back changes nothing."""
    # hold_ms is a duration the receiver counts on its own clock from when the RESTART arrives
    assert {f.name for f in Heartbeat.__dataclass_fields__.values()} == {"kind", "node", "incarnation", "sequence",
                                                                       "echo", "hold_ms", "covers"}
    m = table()
    assert m.on_message(beat("n2", 1, inc=2**63), 0.1)[0] is Decoded.ACCEPTED
    assert m.on_message(beat("n2", 1, inc=3), 0.2) == (Decoded.ACCEPTED, Change.NEW_INCARNATION)  # a lower one


def test_two_fresh_speakers_prove_themselves_to_each_other_in_one_round_trip() -> None:
    a = Membership(me="a", started=0.0, incarnation=11)
    b = Membership(me="b", started=0.0, incarnation=22)
    a.set_expected({"a", "b"}, {"b": {"192.0.2.12"}})
    b.set_expected({"a", "b"}, {"a": {"192.0.2.11"}})
    first = Heartbeat(Kind.ALIVE, "a", 11, 1, a.echo_for("b"))  # a has not heard b: echo 0
    assert b.on_message(first, 0.1, "192.0.2.11")[0] is Decoded.UNECHOED and b.echo_for("a") == 11
    assert a.on_message(Heartbeat(Kind.ALIVE, "b", 22, 1, b.echo_for("a")), 0.2, "192.0.2.12")[0] \
        is Decoded.ACCEPTED
    assert b.on_message(Heartbeat(Kind.ALIVE, "a", 11, 2, a.echo_for("b")), 0.3, "192.0.2.11")[0] \
        is Decoded.ACCEPTED


def test_recorded_alive_and_leave_messages_never_move_an_ip() -> None:
    """An attacker with a recording of every message n2 ever sent, but not the key, replays it after n2 died,
    after n2 restarted, and after we restarted: the alive set, and so every election, stays as it truly is."""
    m = table()
    m.set_expected({"n1", "n2"}, ADDRESSES)
    old_run = [beat("n2", seq, inc=500) for seq in range(1, 4)] + [beat("n2", 4, inc=500, kind=Kind.LEAVE)]
    for i, msg in enumerate(old_run[:-1]):
        m.on_message(msg, 0.1 * i)
    new_run = [beat("n2", seq, inc=600) for seq in range(1, 4)]
    m.on_message(old_run[-1], 0.35)  # n2 restarts: says goodbye, comes back as a new incarnation
    for i, msg in enumerate(new_run):
        assert m.on_message(msg, 0.4 + 0.1 * i)[0] is Decoded.ACCEPTED
    assert m.alive() == {"n1", "n2"}
    for msg in old_run + new_run:  # n2 alive: its old LEAVE, or old alives, change nothing
        assert m.on_message(msg, 0.7)[0] is Decoded.REPLAYED
    assert m.alive() == {"n1", "n2"}
    assert m.tick(0.75) == m.tick(0.95) == [] and m.tick(1.1) == [("n2", Change.HEARTBEAT_TIMEOUT)]  # n2 dies
    for msg in old_run + new_run:  # its alives replayed: still dead
        assert m.on_message(msg, 1.3)[0] is Decoded.REPLAYED
    assert m.alive() == {"n1"}
    fresh = Membership(me="n1", started=0.0, incarnation=8)  # we restarted: no recording echoes the new run
    fresh.set_expected({"n1", "n2"}, ADDRESSES)
    for msg in old_run + new_run:
        assert fresh.on_message(msg, 0.1)[0] is Decoded.UNECHOED
    assert fresh.tick(2.1) == [("n2", Change.NEVER_HEARD)]
    assert fresh.alive() == {"n1"}


def test_forged_heartbeats_are_rejected_before_the_table() -> None:
    assert decode(encode(beat(), b"attacker-guessed-key-0123456789ab"), KEY)[0] is Decoded.BAD_MAC
    wire = bytearray(encode(beat(kind=Kind.ALIVE), KEY))
    wire[4] = Kind.LEAVE.value  # flip ALIVE into LEAVE
    assert decode(bytes(wire), KEY)[0] is Decoded.BAD_MAC


async def test_a_heartbeat_key_shorter_than_32_bytes_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    import base64

    from ironlb.common.kubeapi import SECRETS, Resource
    from ironlb.speaker.control import keys as main

    keys = [b"short-key", b"k" * 31, b"k" * 32]

    class FakeApi:
        def get(self, resource: Resource, name: str, namespace: str) -> dict[str, object]:
            assert resource == SECRETS and (namespace, name) == ("kube-system", "ironlb-heartbeat")
            return {"data": {"key": base64.b64encode(keys.pop(0)).decode()}}

    async def no_wait(_s: float) -> None: ...

    monkeypatch.setattr(main.asyncio, "sleep", no_wait)
    assert (await main.read_key(FakeApi(), "kube-system", "ironlb-heartbeat", "key")).send == b"k" * 32  # type: ignore[arg-type]
    assert sum("fewer than the 32 required" in r.getMessage() for r in caplog.records) == 2


def test_any_internal_ip_of_the_named_node_may_send_its_heartbeats() -> None:
    m = Membership(me="n1", started=0.0, incarnation=ME)
    m.set_expected({"n1", "n2"}, {"n2": {"192.0.2.12", "2001:db8::12"}})
    assert m.on_message(beat("n2", 1), 0.1, "2001:db8::12")[0] is Decoded.ACCEPTED
    assert m.on_message(beat("n2", 2), 0.2, "::ffff:192.0.2.12")[0] is Decoded.ACCEPTED
    assert m.on_message(beat("n2", 3), 0.3, "192.0.2.99")[0] is Decoded.WRONG_SOURCE


@pytest.mark.parametrize("case, msgs, source, in_contact", [
    ("never heard", [], "192.0.2.12", False),
    ("a proven heartbeat", [beat(seq=1)], "192.0.2.12", True),
    ("one made before it heard us: unproven, still a voice", [beat(seq=1, echo=0)], "192.0.2.12", True),
    ("from an address that is not the node's", [beat(seq=1)], "198.51.100.9", False),
])
def test_who_is_in_contact(case: str, msgs: list[Heartbeat], source: str, in_contact: bool) -> None:
    m = table()
    for msg in msgs:
        m.on_message(msg, 1.0, source)
    assert m.in_contact("n2", 1.5) is in_contact, case
    assert not m.in_contact("n2", 1.0 + m.grace + 0.1), "silent past the grace period"


def test_a_replay_is_no_sign_of_life() -> None:
    m = table()
    m.on_message(beat(seq=5), 1.0, "192.0.2.12")
    m.on_message(beat(seq=5), 4.0, "192.0.2.12")  # the same heartbeat again, 3 s later: a recording
    assert not m.in_contact("n2", 4.0)
