"""Two fast planes over the loopback: one restarts, the other answers for its IP with its MAC until it is back,
its node is released, or the hold runs out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ironlb.speaker.fast.announcer import Interface
from ironlb.speaker.fast.claims import Claim
from ironlb.speaker.fast.l2 import packets as pk
from ironlb.speaker.fast.l2.responder import Responder
from ironlb.speaker.fast.nodeindex import NodeIndex
from ironlb.speaker.fast.plane import FastPlane
from ironlb.speaker.state.desired import ALL_INTERFACES
from tests.fakeio import FakePacketIO
from tests.unit.speaker.fast.test_plane import free_port, settle

VIP = "203.0.113.5"
ADDRESS = {"n1": "127.0.0.1", "n2": "127.0.0.2"}
MAC = {"n1": "02:00:00:00:00:01", "n2": "02:00:00:00:00:02"}
TIMING = {"interval": 0.02, "timeout": 0.12}


def node(name: str, port: int) -> FastPlane:
    """NAME's fast plane: its one interface answers over in-memory packet I/O."""
    def responders(iface: Interface) -> Responder:
        return Responder(iface.name, iface.mac, FakePacketIO(), FakePacketIO(), "fe80::1")
    return FastPlane(name, b"k" * 32, port, responders, lambda _: None, lambda *_: None, **TIMING)


async def ready(plane: FastPlane, peer: str, ahead: tuple[str, ...]) -> None:
    """Interfaces, peers, a claim on VIP behind AHEAD, joined."""
    plane.set_interfaces({"eth0": Interface("eth0", 2, MAC[plane.me])})
    plane.liveness.set_peers({peer: ADDRESS[peer]})
    index = NodeIndex()
    mask = index.assign(ahead)
    plane.learn(0, index.names_from(0))
    plane.put({VIP: (Claim(mask, ALL_INTERFACES),)})
    await plane.liveness.join()


@pytest.fixture
async def pair() -> AsyncIterator[tuple[FastPlane, FastPlane]]:
    """n1 (first for VIP) and n2, both joined and hearing each other; n1 answers for VIP."""
    port = free_port()
    n1, n2 = node("n1", port), node("n2", port)
    await n1.start(f"::ffff:{ADDRESS['n1']}")
    await n2.start(f"::ffff:{ADDRESS['n2']}")
    await asyncio.gather(ready(n1, "n2", ()), ready(n2, "n1", ("n1",)))
    await settle(lambda: VIP in n1.owned and n2.alive == {"n1", "n2"})
    yield n1, n2
    await asyncio.gather(n1.close(), n2.close())


def answers_for(plane: FastPlane) -> bytes | None:
    """The MAC PLANE's responder answers VIP with (None: it does not)."""
    responder = plane.announcer.responders.get("eth0")
    if responder is None:
        return None
    return responder.mac if VIP in responder.owned else responder.covered.get(VIP)


async def test_a_restarting_node_is_answered_for_with_its_mac_and_nothing_moves(
        pair: tuple[FastPlane, FastPlane]) -> None:
    n1, n2 = pair
    closing = asyncio.create_task(n1.close(hold_s=5.0))
    # make before break: n2 answers at n1's MAC before n1 stops answering
    await settle(lambda: answers_for(n2) == pk.mac_bytes(MAC["n1"]))
    assert answers_for(n1) == pk.mac_bytes(MAC["n1"])
    await closing
    await asyncio.sleep(0.5)  # several heartbeat timeouts: held, not dead
    assert n2.alive == {"n1", "n2"} and VIP not in n2.owned and answers_for(n2) == pk.mac_bytes(MAC["n1"])
    n2.liveness.release("n1")  # its node no longer answers: taken over, at n2's own MAC
    await settle(lambda: VIP in n2.owned)
    assert answers_for(n2) == pk.mac_bytes(MAC["n2"]) and n2.alive == {"n2"}


async def test_the_hold_ends_when_the_new_run_counts_itself(pair: tuple[FastPlane, FastPlane]) -> None:
    n1, n2 = pair
    await n1.close(hold_s=5.0)
    await settle(lambda: answers_for(n2) == pk.mac_bytes(MAC["n1"]))
    again = node("n1", n1.liveness.port)
    await again.start(f"::ffff:{ADDRESS['n1']}")
    try:
        await ready(again, "n2", ())
        await settle(lambda: answers_for(again) == pk.mac_bytes(MAC["n1"]) and answers_for(n2) is None)
        assert VIP not in n2.owned and n2.alive == {"n1", "n2"}
    finally:
        await again.close()


async def test_without_a_hold_the_node_leaves_and_its_ip_moves(pair: tuple[FastPlane, FastPlane]) -> None:
    n1, n2 = pair
    await n1.close()
    await settle(lambda: VIP in n2.owned)
    assert answers_for(n2) == pk.mac_bytes(MAC["n2"])


async def test_a_hold_runs_out(pair: tuple[FastPlane, FastPlane]) -> None:
    n1, n2 = pair
    await n1.close(hold_s=0.4)
    await settle(lambda: answers_for(n2) == pk.mac_bytes(MAC["n1"]))
    await settle(lambda: VIP in n2.owned, timeout=2.0)
    assert answers_for(n2) == pk.mac_bytes(MAC["n2"])


async def test_an_excluded_ip_is_taken_over_at_once_and_given_back(pair: tuple[FastPlane, FastPlane]) -> None:
    n1, n2 = pair
    await n1.close(hold_s=5.0, excluded=frozenset({VIP}))
    await settle(lambda: VIP in n2.owned)
    assert n2.alive == {"n1", "n2"}  # held all the same: its other IPs would be answered for
    again = node("n1", n1.liveness.port)
    await again.start(f"::ffff:{ADDRESS['n1']}")
    try:
        await ready(again, "n2", ())
        # Back with nothing to cover: n2 lets go, or both would answer for VIP
        await settle(lambda: VIP in again.owned and VIP not in n2.owned)
    finally:
        await again.close()
