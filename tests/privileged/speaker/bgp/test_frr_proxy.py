"""A path announced on another node's behalf, against a real FRR: the router gets the other address as the next
hop, installs it, and what the driver wrote reads back as what it was asked for."""

from __future__ import annotations

import asyncio

import pytest

from ironlb.core.bgp.model import Announcement, Attributes, Desired, Peer
from ironlb.speaker.bgp.driver import FrrDriver
from tests.privileged.speaker.bgp.frrpair import NODE_ASN, ROUTER_ASN, ROUTER_IP, Pair, wait_for

pytestmark = pytest.mark.privileged

VIP = "198.18.39.210/32"
OTHER_NODE = "198.18.39.3"  # another node's address on the subnet the node shares with the router
PEER = Peer("rtr", NODE_ASN, ROUTER_ASN, address=ROUTER_IP, hold_time_s=3, connect_time_s=1)


def desired(next_hop: str | None) -> Desired:
    """The peer, with VIP announced with NEXT_HOP (None: the node's own address)."""
    return Desired.of([PEER], [], [Announcement(VIP, frozenset({"rtr"}), Attributes.of(next_hop=next_hop))])


async def test_the_router_gets_and_installs_the_other_nodes_next_hop_and_it_reads_back(pair: Pair) -> None:
    driver = FrrDriver(pair.node.dir)
    try:
        await driver.apply(desired(OTHER_NODE))

        async def fib_next_hops() -> set[str]:
            routes = await pair.router.json("zebra", f"show ip route {VIP} json")
            return {h.get("ip") for r in routes.get(VIP, []) for h in r["nexthops"] if h.get("fib")}
        assert await wait_for(lambda: _equal(fib_next_hops, {OTHER_NODE}))
        assert await driver.read_back() == desired(OTHER_NODE)
        restarted = FrrDriver(pair.node.dir)
        try:
            assert await restarted.apply(desired(OTHER_NODE)) == []  # a restarted speaker sends nothing
            await restarted.apply(desired(None))  # its own path again: one command
            assert await wait_for(lambda: _equal(fib_next_hops, {"198.18.39.2"}))
        finally:
            restarted.close()
    finally:
        driver.close()
        await asyncio.sleep(0.01)


async def _equal(read, wanted: set[str]) -> bool:
    return await read() == wanted
