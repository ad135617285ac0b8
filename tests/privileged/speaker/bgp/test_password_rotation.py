"""A password Secret rotated on both sides: the feed follows the Secret's watch, FRR's driver changes the one
neighbor, and the session comes back Established with the new password (real FRRs, one in each namespace)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from ironlb.api.bgp_status import SessionState
from ironlb.speaker.bgp.component import BgpComponent
from ironlb.speaker.bgp.vty import Vty
from tests.privileged.speaker.bgp.frrpair import NODE_ASN, ROUTER_ASN, ROUTER_IP, Pair, wait_for
from tests.unit.speaker.control.test_bgpfeed import World, bgp_peer

pytestmark = pytest.mark.privileged


async def set_router_password(pair: Pair, password: str) -> None:
    """The router's side: the password of the listen range's peer group."""
    vty = Vty(f"{pair.router.dir}/bgpd.vty")
    try:
        await vty.configure([f"router bgp {ROUTER_ASN}", f"neighbor nodes password {password}"])
    finally:
        vty.close()


async def test_a_rotated_password_brings_the_session_back_with_the_new_one(pair: Pair) -> None:
    peer = bgp_peer("rtr", myASN=NODE_ASN, peerASN=ROUTER_ASN, peerAddress=ROUTER_IP, holdTime="3s",
                    keepaliveTime="1s", connectTime="1s", passwordSecret={"name": "rtr-pw"})
    world = World(peers=[peer], ads=[])
    component = BgpComponent(pair.node.dir, poll_s=0.1)
    world.feed.driver = component
    tasks = [asyncio.create_task(component.run()), asyncio.create_task(world.feed.run())]

    async def established(count: int) -> bool:
        return any(s.peer == "rtr" and s.state is SessionState.ESTABLISHED and s.established_count >= count
                   for s in component.sessions)

    async def config_has(password: str) -> bool:
        return f"password {password}" in await pair.node.show("bgpd", "show running-config")
    try:
        await set_router_password(pair, "first-secret")
        world.secrets.send("rtr-pw", "first-secret")
        world.follow(set())
        await wait_for(lambda: established(1), timeout=20)
        await set_router_password(pair, "second-secret")  # the router's side first: the session goes down
        world.secrets.send("rtr-pw", "second-secret")  # the Secret's watch sees the rotation
        world.follow(set())
        await wait_for(lambda: config_has("second-secret"), timeout=5)
        await wait_for(lambda: established(2), timeout=30)
        assert not await config_has("first-secret")
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks)
