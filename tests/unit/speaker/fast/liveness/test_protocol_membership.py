"""Heartbeat protocol and membership table, with injected time."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from ironlb.speaker.fast.liveness.membership import MAX_HOLD_S, Change, Membership, PeerState
from ironlb.speaker.fast.liveness.protocol import Decoded, Heartbeat, Kind, Notice, Say, decode, encode

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
    # hold_ms is a duration the receiver counts on its own clock from when the RESTART arrives; a notice's life
    # is a counter, not a time
    assert {f.name for f in Heartbeat.__dataclass_fields__.values()} == {"kind", "node", "incarnation", "sequence",
                                                                       "echo", "hold_ms", "covers", "digest",
                                                                       "notice"}
    assert {f.name for f in Notice.__dataclass_fields__.values()} == {"say", "sender", "subject", "incarnation", "life"}
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


# -- a speaker that restarts -----------------------------------------------------------------------------------

MAC2 = b"\x02\x00\x00\x00\x00\x02"


def restart(seq: int, covers: tuple[tuple[str, bytes], ...] = (("203.0.113.5", MAC2),), hold_ms: int = 5000,
            inc: int = 100) -> Heartbeat:
    """n2 says its speaker restarts, naming COVERS."""
    return Heartbeat(Kind.RESTART, "n2", inc, seq, ME, hold_ms, covers)


def test_a_restart_round_trips_and_a_cut_or_padded_one_is_refused() -> None:
    msg = restart(3, (("203.0.113.5", MAC2), ("2001:db8::5", MAC2)))
    wire = encode(msg, KEY)
    assert decode(wire, KEY) == (Decoded.ACCEPTED, msg)
    # Re-signed after the change, so only the framing is judged
    body = wire[:-32]
    for bad in (body[:-3], body + b"\0", body[:-23] + b"\x09" + body[-22:]):
        assert decode(bad + hmac_of(bad), KEY)[0] is Decoded.MALFORMED
    alive = encode(beat(), KEY)[:-32] + b"\0"  # only a RESTART carries anything after the echo
    assert decode(alive + hmac_of(alive), KEY)[0] is Decoded.MALFORMED


def hmac_of(body: bytes) -> bytes:
    import hashlib
    import hmac
    return hmac.new(KEY, body, hashlib.sha256).digest()


@pytest.mark.parametrize(("steps", "state", "alive", "held"), [
    # said, then silent: held (alive for the election, not heard) past any heartbeat timeout
    ([("beat", 0.0, 1), ("restart", 0.1, 2), ("tick", 3.0)], PeerState.HELD, True, True),
    # held as long as it asked, and no longer
    ([("beat", 0.0, 1), ("restart", 0.1, 2), ("tick", 5.2)], PeerState.DEAD, False, False),
    # its node stopped answering: released at once
    ([("beat", 0.0, 1), ("restart", 0.1, 2), ("release", 0.5)], PeerState.DEAD, False, False),
    # its new run is up but fenced (not answering yet): still held
    ([("beat", 0.0, 1), ("restart", 0.1, 2), ("fenced-new", 2.0, 1)], PeerState.HELD, True, True),
    # its new run joined: alive, and answered for until it counts itself (two timeouts), then not
    ([("beat", 0.0, 1), ("restart", 0.1, 2), ("alive-new", 2.0, 1), ("alive-new", 2.3, 2), ("alive-new", 2.6, 3)],
     PeerState.ALIVE, True, True),
    ([("beat", 0.0, 1), ("restart", 0.1, 2), ("alive-new", 2.0, 1), ("alive-new", 2.3, 2), ("alive-new", 2.6, 3),
      ("alive-new", 2.81, 4)], PeerState.ALIVE, True, False),
    # a LEAVE ends it like any goodbye
    ([("beat", 0.0, 1), ("restart", 0.1, 2), ("leave", 0.2, 3)], PeerState.LEFT, False, False),
])
def test_a_held_peer(steps: list[tuple], state: PeerState, alive: bool, held: bool) -> None:
    m = table()
    for step in steps:
        kind, at = step[0], step[1]
        if kind == "beat":
            m.on_message(beat("n2", step[2]), at, "192.0.2.12")
        elif kind == "restart":
            assert m.on_message(restart(step[2]), at, "192.0.2.12") == (Decoded.ACCEPTED, Change.HELD)
        elif kind == "leave":
            m.on_message(beat("n2", step[2], kind=Kind.LEAVE), at, "192.0.2.12")
        elif kind == "fenced-new":
            m.on_message(beat("n2", step[2], inc=200, kind=Kind.FENCED), at, "192.0.2.12")
        elif kind == "alive-new":
            m.on_message(beat("n2", step[2], inc=200), at, "192.0.2.12")
        elif kind == "release":
            assert m.release("n2") is Change.RELEASED
        m.tick(at - 0.1)  # the first tick after a gap is taken for a stall of our own and expires nothing
        m.tick(at)
    assert m.peers["n2"].state is state
    assert ("n2" in m.alive()) is alive and ("n2" in m.held()) is held
    assert "n2" not in m.heard() or state is PeerState.ALIVE
    assert m.covers() == ({"203.0.113.5": MAC2} if held else {})


def test_a_restarts_chunks_add_up_and_a_recording_of_one_does_nothing() -> None:
    m = table()
    m.on_message(beat("n2", 1), 0.0, "192.0.2.12")
    m.on_message(restart(2, (("203.0.113.5", MAC2),)), 0.1, "192.0.2.12")
    version = m.holds_version
    m.on_message(restart(3, (("203.0.113.6", MAC2),)), 0.1, "192.0.2.12")
    assert m.covers() == {"203.0.113.5": MAC2, "203.0.113.6": MAC2} and m.holds_version > version
    version = m.holds_version
    assert m.on_message(restart(3, (("203.0.113.7", MAC2),)), 0.2, "192.0.2.12")[0] is Decoded.REPLAYED
    assert m.on_message(restart(4, (("203.0.113.6", MAC2),)), 0.2, "192.0.2.12") == (Decoded.ACCEPTED, None)
    assert m.holds_version == version  # a repeat changes nothing to re-decide
    assert m.release("n3") is None  # not held: nothing to release


def test_a_hold_cannot_be_asked_for_longer_than_the_limit() -> None:
    m = table()
    m.on_message(beat("n2", 1), 0.0, "192.0.2.12")
    m.on_message(restart(2, hold_ms=2**32 - 1), 0.0, "192.0.2.12")
    for at in (MAX_HOLD_S - 1.1, MAX_HOLD_S - 1):  # the first tick after a gap is taken for a stall of our own
        m.tick(at)
    assert m.peers["n2"].state is PeerState.HELD
    m.tick(MAX_HOLD_S)
    m.tick(MAX_HOLD_S + 0.1)
    assert m.peers["n2"].state is PeerState.DEAD


def test_version_3_carries_the_digest_and_notices_and_version_2_stays_byte_for_byte() -> None:
    v2 = encode(beat(), KEY)
    assert v2[3] == 2 and decode(v2, KEY) == (Decoded.ACCEPTED, beat())
    with_digest = Heartbeat(Kind.ALIVE, "n2", 100, 1, ME, digest=0xFEED)
    wire = encode(with_digest, KEY)
    assert wire[3] == 3 and len(wire) == len(v2) + 8 and decode(wire, KEY) == (Decoded.ACCEPTED, with_digest)
    notice = Heartbeat(Kind.NOTICE, "n2", 100, 2, 0, digest=1, notice=Notice(Say.DEAD, "n2", "n3", 42, 7))
    assert decode(encode(notice, KEY), KEY) == (Decoded.ACCEPTED, notice)
    restart = Heartbeat(Kind.RESTART, "n2", 100, 3, ME, 500, (("192.0.2.80", b"\x02" * 6),), digest=5)
    assert decode(encode(restart, KEY), KEY) == (Decoded.ACCEPTED, restart)


def test_a_notice_is_version_3_only_and_says_a_known_thing() -> None:
    def signed(body: bytes) -> bytes:
        return body + hmac.new(KEY, body, hashlib.sha256).digest()

    notice = bytes([3, 2]) + b"n3" + bytes(16)  # DEAD of n3
    assert decode(signed(b"ILB\x03\x05\x02n2" + bytes(24) + bytes(8) + notice), KEY)[0] is Decoded.ACCEPTED
    assert decode(signed(b"ILB\x02\x05\x02n2" + bytes(24) + notice), KEY)[0] is Decoded.MALFORMED  # no digest
    no_such_say = bytes([9, 2]) + b"n3" + bytes(16)
    assert decode(signed(b"ILB\x03\x05\x02n2" + bytes(24) + bytes(8) + no_such_say), KEY)[0] is Decoded.MALFORMED
    assert decode(signed(b"ILB\x03\x05\x02n2" + bytes(24) + bytes(8) + notice[:-1]), KEY)[0] is Decoded.MALFORMED


def test_a_notice_is_no_heartbeat_of_its_sender_state() -> None:
    m = table()
    m.on_message(beat("n2", 1, kind=Kind.FENCED), 0.1)
    notice = Heartbeat(Kind.NOTICE, "n2", 100, 2, ME, digest=0, notice=Notice(Say.DEAD, "n2", "n3", 0, 0))
    assert m.on_message(notice, 0.2) == (Decoded.ACCEPTED, None)
    assert m.peers["n2"].state is PeerState.FENCED and m.on_message(notice, 0.3)[0] is Decoded.REPLAYED


def test_a_signed_heartbeat_of_no_known_kind_is_malformed() -> None:
    body = bytearray(encode(beat(), KEY)[:-32])
    for kind in (0, 6, 255):
        body[4] = kind
        assert decode(bytes(body) + hmac_of(bytes(body)), KEY) == (Decoded.MALFORMED, None)
