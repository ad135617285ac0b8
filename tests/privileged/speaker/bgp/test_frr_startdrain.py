"""A speaker that starts on a drained node, against a real FRR: the route its predecessor left announced reaches
the router less preferred (GRACEFUL_SHUTDOWN) before it is withdrawn, and the session is not reset; when the
predecessor stopped mid-drain, the new speaker does not wait the whole bound again."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

import pytest

from ironlb.core.bgp.model import Announcement, Desired, Peer
from ironlb.core.bgp.nodedrain import DrainCause
from ironlb.core.bgp.startdrain import StartDrain
from ironlb.speaker.bgp.component import BgpComponent
from ironlb.speaker.bgp.drain import DrainSettings
from ironlb.speaker.bgp.status import SessionState
from tests.privileged.speaker.bgp.frrpair import NODE_ASN, ROUTER_ASN, ROUTER_IP, Pair, wait_for

pytestmark = pytest.mark.privileged

VIP = "198.18.39.220/32"
PEER = Peer("rtr", NODE_ASN, ROUTER_ASN, address=ROUTER_IP, hold_time_s=3, connect_time_s=1)
SETTINGS = DrainSettings(bound_s=5, settle_s=0.5)


def desired(*prefixes: str) -> Desired:
    return Desired.of([PEER], (), [Announcement(p, frozenset({"rtr"})) for p in prefixes])


@contextlib.asynccontextmanager
async def running(component: BgpComponent):
    """COMPONENT's status loop, as the speaker runs it from its start; cancelled afterwards (no drain)."""
    runner = asyncio.create_task(component.run())
    try:
        yield component
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def announced_by_a_speaker_that_then_dies(pair: Pair) -> BgpComponent:
    """A first speaker announces VIP and is gone (killed: no drain); FRR keeps the route."""
    first = BgpComponent(pair.node.dir, poll_s=0.1)
    async with running(first):
        await first.update(desired(VIP))
        await wait_for(lambda: established(first))
        await wait_for(lambda: pair.router_path(VIP))
    return first


async def established(component: BgpComponent) -> bool:
    return any(s.state is SessionState.ESTABLISHED for s in component.sessions)


async def gshut(pair: Pair) -> bool:
    paths = (await pair.router_path(VIP)).get("paths", [])
    return any("gracefulShutdown" in p.get("community", {}).get("list", []) for p in paths)


async def test_started_on_a_cordoned_node_it_drains_what_its_predecessor_left(pair: Pair) -> None:
    await announced_by_a_speaker_that_then_dies(pair)
    before = await pair.router_neighbor()
    second = BgpComponent(pair.node.dir, poll_s=0.1, drain_settings=SETTINGS)
    async with running(second):
        await asyncio.sleep(0.3)  # its status loop runs before the feed's first update
        assert await pair.router_path(VIP), "nothing withdrawn before the feed's first update"
        await second.drain(DrainCause.CORDONED, final=False)  # the Node's event comes first
        first_update = asyncio.create_task(second.update(desired(VIP)))
        await wait_for(lambda: gshut(pair), timeout=5)  # less preferred first, still there
        assert not first_update.done()
        await first_update
        assert second.leftover is StartDrain.DRAIN_LEFT

        async def gone() -> bool:
            return not await pair.router_path(VIP)
        await wait_for(gone, timeout=2)
        after = await pair.router_neighbor()
        assert after["bgpState"] == "Established", "a cordoned node keeps its session"
        assert after["connectionsEstablished"] == before["connectionsEstablished"], "no session reset"
        await second.undrain()  # back to serving, for the next test
        await wait_for(lambda: pair.router_path(VIP), timeout=2)
        assert not await gshut(pair)


async def test_started_after_a_predecessor_died_mid_drain_it_finishes_without_the_whole_bound(pair: Pair) -> None:
    first = await announced_by_a_speaker_that_then_dies(pair)
    await first.driver.apply(replace(desired(VIP), graceful_shutdown=True))  # the drain's first step, then killed
    await wait_for(lambda: gshut(pair), timeout=5)
    first.driver.close()
    await asyncio.sleep(1)  # a new speaker starts later than bgpd's last UPDATE for graceful shutdown goes out
    second = BgpComponent(pair.node.dir, poll_s=0.1, drain_settings=SETTINGS)
    async with running(second):
        await second.drain(DrainCause.CORDONED, final=False)
        start = time.monotonic()
        await second.update(desired(VIP))
        assert time.monotonic() - start < SETTINGS.bound_s, "waited the bound for an UPDATE that never comes"
        assert second.leftover is StartDrain.FINISH_LEFT_DRAIN

        async def gone() -> bool:
            return not await pair.router_path(VIP)
        await wait_for(gone, timeout=2)
