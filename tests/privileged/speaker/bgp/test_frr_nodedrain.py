"""BGP mode's component drained by its own Node (cordon) against a real FRR: the route goes to the router less
preferred (GRACEFUL_SHUTDOWN) first, then is withdrawn while the session stays up; updates while drained keep it
withdrawn; uncordoned, it is announced again at once; after SIGTERM's final drain nothing is announced again."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from ironlb.core.bgp.model import Announcement, BfdProfile, Desired, Peer
from ironlb.core.bgp.nodedrain import DrainCause
from ironlb.speaker.bgp.component import BgpComponent
from ironlb.speaker.bgp.drain import DrainOutcome, DrainSettings
from ironlb.speaker.bgp.status import SessionState
from tests.privileged.speaker.bgp.frrpair import NODE_ASN, ROUTER_ASN, ROUTER_IP, Pair, wait_for

pytestmark = pytest.mark.privileged

VIP, VIP2 = "198.18.39.210/32", "198.18.39.211/32"
PEER = Peer("rtr", NODE_ASN, ROUTER_ASN, address=ROUTER_IP, hold_time_s=3, connect_time_s=1)


def desired(*prefixes: str) -> Desired:
    return Desired.of([PEER], [BfdProfile("unused")], [Announcement(p, frozenset({"rtr"})) for p in prefixes])


async def test_cordon_drains_keeps_the_session_refuses_updates_and_uncordon_announces_again(pair: Pair) -> None:
    component = BgpComponent(pair.node.dir, poll_s=0.1, drain_settings=DrainSettings(bound_s=5, settle_s=0.5))
    runner = asyncio.create_task(component.run())

    async def path(prefix: str = VIP) -> dict:
        return await pair.router_path(prefix)

    async def gshut() -> bool:
        paths = (await path()).get("paths", [])
        return any("gracefulShutdown" in p.get("community", {}).get("list", []) for p in paths)

    async def gone() -> bool:
        return not await path() and not await path(VIP2)

    async def established() -> bool:
        return any(s.state is SessionState.ESTABLISHED for s in component.sessions)
    try:
        await component.update(desired(VIP))
        await wait_for(established)
        await wait_for(path)
        draining = asyncio.create_task(component.drain(DrainCause.CORDONED, final=False))
        await wait_for(gshut, timeout=5)  # less preferred first, still there
        assert not draining.done() and component.drained is DrainCause.CORDONED
        assert await draining is DrainOutcome.PEERS_UPDATED
        await wait_for(gone, timeout=2)
        assert await established(), "a cordoned node keeps its session"

        await component.update(desired(VIP, VIP2))  # a new Service while cordoned: not announced
        await asyncio.sleep(0.5)
        assert await gone()

        await component.undrain()
        await wait_for(path, timeout=2)
        await wait_for(lambda: path(VIP2), timeout=2)
        assert not await gshut(), "announced again without the graceful-shutdown community"

        assert await component.drain() is DrainOutcome.PEERS_UPDATED  # SIGTERM: the final drain
        await wait_for(gone, timeout=2)
        await component.update(desired(VIP))  # a change the feed hands over before the speaker stops
        await component.undrain()
        held = await component.driver.read_back()
        assert (held.peers, held.announcements) == ({}, ()), "nothing configured again after the final drain"
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
