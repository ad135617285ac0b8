"""BGP mode's component started on a drained node, over a fake FRR: what a previous speaker left announced goes
less preferred before it is withdrawn; a node that starts serving, or is cordoned after its first update, is
driven as before."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from ironlb.api.bgp_status import BFDState, SessionState
from ironlb.core.bgp.model import Announcement, BfdProfile, Desired, Peer
from ironlb.core.bgp.nodedrain import DrainCause
from ironlb.core.bgp.startdrain import StartDrain
from ironlb.speaker.bgp.component import BgpComponent
from ironlb.speaker.bgp.drain import DrainOutcome, DrainSettings
from ironlb.speaker.bgp.nodedrain import drained_conditions
from ironlb.speaker.bgp.status import Session

PEER = Peer("rtr", 64513, 64512, address="198.18.36.1")
VIP, VIP2 = "198.18.37.1/32", "198.18.37.2/32"
QUICK = DrainSettings(bound_s=2.0, settle_s=0.05, poll_s=0.005)

Step = tuple[tuple[str, ...], bool, int]  # what the router is sent: prefixes, graceful shutdown, how many peers


def desired(*prefixes: str, gshut: bool = False) -> Desired:
    return Desired.of([PEER], [BfdProfile("fast")], [Announcement(p, frozenset({"rtr"})) for p in prefixes], gshut)


def step(*prefixes: str, gshut: bool = True, peers: int = 1) -> Step:
    return tuple(sorted(prefixes)), gshut, peers


class FakeFrr:
    """FRR as the component's driver sees it: what it holds (left by a previous speaker), and one session to the
    router whose UPDATE count moves with each change of what it is sent."""

    def __init__(self, held: Desired) -> None:
        self.held = held
        self.applied: Desired | None = None  # unknown: a new speaker
        self.steps: list[Step] = []  # each change FRR was asked for
        self.updates = 0

    async def read_back(self) -> Desired:
        return self.held

    async def apply(self, new: Desired, touched: set[str] | None = None) -> list:
        if new != self.held:
            self.steps.append(step(*(p for _, p in new.routes()), gshut=new.graceful_shutdown, peers=len(new.peers)))
            self.updates += 1
        self.held = self.applied = new
        return []

    async def sessions(self) -> list[Session]:
        if not self.held.peers:
            return []
        return [Session("rtr", "198.18.36.1", "", SessionState.ESTABLISHED, BFDState.OFF, 3000, 1000,
                        len(self.held.routes()), 1, None, "", updates_sent=self.updates, out_queue=0)]

    def close(self) -> None:
        pass


def component_on(frr: FakeFrr, settings: DrainSettings = QUICK) -> BgpComponent:
    component = BgpComponent("/nonexistent", poll_s=0.01, drain_settings=settings)
    component.driver = frr  # type: ignore[assignment]
    return component


def message(component: BgpComponent) -> str:
    return drained_conditions(component, None)[0]["message"]


async def test_started_drained_with_routes_in_frr_sends_them_less_preferred_before_it_withdraws(
        caplog: pytest.LogCaptureFixture) -> None:
    frr = FakeFrr(desired(VIP))  # the previous speaker announced, and was gone before the cordon
    component = component_on(frr)
    caplog.set_level(logging.INFO, "ironlb.speaker.bgp")
    assert await component.drain(DrainCause.CORDONED, final=False) is None  # before the feed's first update
    assert frr.steps == []
    start = time.monotonic()
    await component.update(desired(VIP))
    assert frr.steps == [step(VIP), step()]  # graceful shutdown with the route, then withdrawn
    assert time.monotonic() - start >= QUICK.settle_s  # the peers took it, then the settle
    assert component.leftover is StartDrain.DRAIN_LEFT
    assert "left routes drained: PeersUpdated" in caplog.text
    assert message(component) == "routes drained: Cordoned; FRR read back: DrainLeftRoutes"
    await component.update(desired(VIP, VIP2))  # later updates: withdrawn, as before
    assert frr.steps == [step(VIP), step()]


async def test_started_drained_mid_drain_does_not_wait_the_bound_again(caplog: pytest.LogCaptureFixture) -> None:
    frr = FakeFrr(desired(VIP, gshut=True))  # the previous speaker stopped between graceful shutdown and withdraw
    component = component_on(frr)
    caplog.set_level(logging.INFO, "ironlb.speaker.bgp")
    await component.drain(DrainCause.CORDONED, final=False)
    start = time.monotonic()
    await component.update(desired(VIP))
    assert time.monotonic() - start < QUICK.bound_s / 2  # no new UPDATE was waited for: none would come
    assert frr.steps == [step()]  # graceful shutdown was on already: the withdraw is the one change
    assert component.leftover is StartDrain.FINISH_LEFT_DRAIN
    assert "left routes drained: PeersUpdated" in caplog.text


async def test_started_drained_with_nothing_in_frr_waits_for_nothing() -> None:
    frr = FakeFrr(Desired())  # a new node, or the previous speaker's final drain ran
    component = component_on(frr, DrainSettings(bound_s=2.0, settle_s=1.0))
    await component.drain(DrainCause.OUT_OF_SERVICE, final=False)
    start = time.monotonic()
    await component.update(desired(VIP))
    assert time.monotonic() - start < 0.5
    assert frr.steps == [step()]  # the peers, nothing announced
    assert component.leftover is StartDrain.NOTHING_LEFT
    assert message(component) == "routes drained: OutOfService; FRR read back: NothingLeft"


async def test_started_serving_keeps_what_frr_holds_and_applies_the_first_update() -> None:
    frr = FakeFrr(desired(VIP))
    component = component_on(frr)
    runner = asyncio.create_task(component.run())
    try:
        await asyncio.sleep(0.1)  # status polls before the feed's first update
        assert frr.steps == [], "nothing applied before the feed's first update"
        await component.update(desired(VIP, VIP2))
        assert frr.steps == [step(VIP, VIP2, gshut=False)]
        assert component.leftover is None and message(component) == "announcing"
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def test_a_cordon_after_the_first_update_drains_as_before() -> None:
    frr = FakeFrr(Desired())
    component = component_on(frr)
    await component.update(desired(VIP))
    assert await component.drain(DrainCause.CORDONED, final=False) is DrainOutcome.PEERS_UPDATED
    assert frr.steps == [step(VIP, gshut=False), step(VIP), step()]
    assert component.leftover is None and message(component) == "routes drained: Cordoned"
    await component.undrain()
    assert frr.steps[-1] == step(VIP, gshut=False)


async def test_sigterm_before_the_first_update_drains_what_frr_holds() -> None:
    frr = FakeFrr(desired(VIP))
    component = component_on(frr)
    assert await component.drain() is DrainOutcome.PEERS_UPDATED
    assert frr.steps == [step(VIP), step(), step(peers=0)]  # less preferred, withdrawn, sessions closed
