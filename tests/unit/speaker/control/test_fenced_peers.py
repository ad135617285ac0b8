"""FENCED heartbeats, carrier loss and the fencing loop: how a fence is announced, seen and undone."""

from __future__ import annotations

import asyncio

import pytest

from ironlb.common.kubeapi import ApiError
from ironlb.speaker.control.fence_loop import Fencer
from ironlb.speaker.control.fencing import ApiProbe, Fence, FenceDecision
from ironlb.speaker.control.interfaces import Skip, classify, lost_carrier, usable
from ironlb.speaker.control.netlink import Message
from ironlb.speaker.fast.liveness.membership import Change, Membership, PeerState
from ironlb.speaker.fast.liveness.protocol import Decoded, Heartbeat, Kind, decode, encode

ME = 7
UP, LOWER_UP = 0x1, 0x10000


def beat(seq: int, kind: Kind = Kind.ALIVE, node: str = "n2") -> Heartbeat:
    return Heartbeat(kind, node, 100, seq, ME)


def table() -> Membership:
    m = Membership(me="n1", started=0.0, timeout=0.4, grace=2.0, incarnation=ME)
    m.set_expected({"n1", "n2", "n3"})
    return m


# (case, messages from n2 as (time, seq, kind), tick time, n2's state, n2 alive?, n2 heard?, changes seen)
FENCED_CASES = [
    ("a fenced peer is heard but not alive", [(0.1, 1, Kind.FENCED)], 0.2, PeerState.FENCED, False, True,
     [Change.FENCED]),
    ("fenced, then back", [(0.1, 1, Kind.FENCED), (0.2, 2, Kind.ALIVE)], 0.3, PeerState.ALIVE, True, True,
     [Change.FENCED, Change.RECOVERED]),
    ("a fenced peer that goes silent dies", [(0.1, 1, Kind.FENCED)], 0.6, PeerState.DEAD, False, False,
     [Change.FENCED]),
    ("alive, then fenced", [(0.1, 1, Kind.ALIVE), (0.2, 2, Kind.FENCED)], 0.3, PeerState.FENCED, False, True,
     [Change.PROVEN, Change.FENCED]),
    ("a replayed ALIVE cannot lift a fence", [(0.1, 2, Kind.FENCED), (0.2, 1, Kind.ALIVE)], 0.3, PeerState.FENCED,
     False, True, [Change.FENCED]),
]


@pytest.mark.parametrize(("case", "msgs", "tick", "state", "alive", "heard", "changes"), FENCED_CASES,
                         ids=[c[0] for c in FENCED_CASES])
def test_fenced_heartbeats(case: str, msgs: list, tick: float, state: PeerState, alive: bool, heard: bool,
                           changes: list) -> None:
    m = table()
    seen = [m.on_message(beat(seq, kind), t)[1] for t, seq, kind in msgs]
    m.tick(tick)
    assert m.peers["n2"].state is state
    assert ("n2" in m.alive()) is alive and ("n2" in m.heard()) is heard
    assert [c for c in seen if c is not None] == changes
    assert m.known() == {"n2"}  # n3 never spoke: nobody to be cut off from


def test_fenced_travels_authenticated() -> None:
    key = b"k" * 32
    assert decode(encode(beat(1, Kind.FENCED), key), key) == (Decoded.ACCEPTED, beat(1, Kind.FENCED))


def link(index: int, name: str, flags: int) -> Message:
    attrs = {"IFLA_IFNAME": name, "IFLA_ADDRESS": f"02:00:00:00:00:0{index}"}
    return Message(attrs, "RTM_NEWLINK", {"index": index, "flags": flags})


def addr(index: int, address: str) -> Message:
    return Message({"IFA_ADDRESS": address}, "RTM_NEWADDR", {"index": index, "family": 2})


# (case, eth0 flags, eth1 flags, eth0's skip, default interfaces, lost carrier)
CARRIER_CASES = [
    ("both with carrier", UP | LOWER_UP, UP | LOWER_UP, None, {"eth0", "eth1"}, set()),
    ("cable pulled on eth0", UP, UP | LOWER_UP, Skip.NO_CARRIER, {"eth1"}, {"eth0"}),
    ("eth0 set down is down, not carrier loss", 0, UP | LOWER_UP, Skip.DOWN, {"eth1"}, set()),
    ("every cable pulled", UP, UP, Skip.NO_CARRIER, set(), {"eth0", "eth1"}),
]


@pytest.mark.parametrize(("case", "f0", "f1", "skip", "defaults", "lost"), CARRIER_CASES,
                         ids=[c[0] for c in CARRIER_CASES])
def test_carrier(case: str, f0: int, f1: int, skip: Skip | None, defaults: set, lost: set) -> None:
    links = [link(2, "eth0", f0), link(3, "eth1", f1)]
    addrs = [addr(2, "192.0.2.11"), addr(3, "192.0.2.21")]
    assert classify(links[0], {2, 3}, set()) is skip
    assert {n for n, i in usable(links, addrs, set()).items() if i.by_default} == defaults
    assert lost_carrier(links, addrs, set()) == lost


def test_an_excluded_interface_losing_carrier_is_not_a_fencing_matter() -> None:
    assert lost_carrier([link(2, "mgmt0", UP)], [addr(2, "192.0.2.11")], {"mgmt0"}) == frozenset()


class FakeLiveness:
    def __init__(self) -> None:
        self.me = "n1"
        self.membership = table()
        self.fences = 0

    def fence(self) -> None:
        self.fences += 1


class FakePresence:
    """Presence as the API would return it (peers whose speaker runs); `fail` makes the next reads raise."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, int]] = {"n1": ("a-1", 0), "n2": ("b-1", 1), "n3": ("c-1", 1)}
        self.fail: Exception | None = None
        self.nudges = 0

    def read(self) -> dict[str, tuple[str, int]]:
        if self.fail is not None:
            raise self.fail
        return dict(self.values)

    def nudge(self) -> None:
        self.nudges += 1


def fencer(carrier: bool = True) -> tuple[Fencer, FakeLiveness, FakePresence, list[int]]:
    live, presence, rejoins = FakeLiveness(), FakePresence(), []

    async def rejoin() -> None:
        rejoins.append(1)

    f = Fencer(live, presence, lambda: carrier, rejoin, probe_period=0.0,  # type: ignore[arg-type]
               fence=Fence(me="n1", grace=0.0))
    return f, live, presence, rejoins


def test_probe_tells_an_answering_api_from_an_unreachable_one() -> None:
    f, _, presence, _ = fencer()
    assert f.probe().api is ApiProbe.REACHABLE and f.probe().presence["n2"] == ("b-1", 1)
    presence.fail = ApiError(403, "Forbidden")
    assert f.probe().api is ApiProbe.REACHABLE  # it answered: no proof, but not cut off
    presence.fail = ApiError(503, "Service Unavailable")
    assert f.probe().api is ApiProbe.UNREACHABLE
    presence.fail = TimeoutError("read timed out")
    assert f.probe().api is ApiProbe.UNREACHABLE


def test_the_loop_fences_once_and_rejoins_through_the_gate_when_peers_are_heard_again() -> None:
    f, live, presence, rejoins = fencer()
    live.membership.on_message(beat(1), 0.0)  # n2 heard once, then silence

    async def scenario() -> list[FenceDecision]:
        live.membership.tick(1e9)  # n2 now silent past its timeout
        out = [await f.step()]                 # silence noticed
        out.append(await f.step())             # first probe: baseline
        presence.values["n2"] = ("b-2", 1)     # n2 renewed and hears n3: a group lives without us
        out.append(await f.step())
        out.append(await f.step())
        live.membership.peers["n2"].state, live.membership.peers["n2"].last_heard = PeerState.ALIVE, 1e9
        out.append(await f.step())
        return out

    assert asyncio.run(scenario()) == [FenceDecision.SILENCE_GRACE, FenceDecision.PEERS_DEAD,
                                       FenceDecision.FENCE_PEERS_ALIVE, FenceDecision.FENCE_PEERS_ALIVE,
                                       FenceDecision.ANSWER]
    assert live.fences == 1 and rejoins == [1] and f.fences == {"fence-peers-alive": 1}
    assert presence.nudges == 2  # silence began, silence ended: renewed at once both times


def test_a_peer_that_stopped_renewing_is_dead_and_we_keep_answering() -> None:
    f, live, _, rejoins = fencer()
    live.membership.on_message(beat(1), 0.0)

    async def scenario() -> list[FenceDecision]:
        live.membership.tick(1e9)
        return [await f.step(), await f.step(), await f.step()]

    assert asyncio.run(scenario()) == [FenceDecision.SILENCE_GRACE, FenceDecision.PEERS_DEAD,
                                       FenceDecision.PEERS_DEAD]
    assert live.fences == 0 and rejoins == []


def test_losing_one_peer_while_others_are_heard_reports_nothing() -> None:
    f, live, presence, _ = fencer()
    live.membership.on_message(beat(1), 0.0)
    live.membership.on_message(beat(1, node="n3"), 0.0)

    async def scenario() -> list[int]:
        await f.step()  # hears n2 and n3: reported once, the first step
        nudges = [presence.nudges]
        live.membership.peers["n2"].state = PeerState.DEAD  # n2 falls silent, n3 still heard
        await f.step()
        nudges.append(presence.nudges)
        live.membership.peers["n3"].state = PeerState.DEAD  # now alone: that is news for the peers
        await f.step()
        nudges.append(presence.nudges)
        return nudges

    assert asyncio.run(scenario()) == [1, 1, 2]
