"""Twelve speakers in ring mode on loopback sockets: heartbeats to the neighbours only, deaths agreed and told."""

from __future__ import annotations

import asyncio
import time

from ironlb.speaker.fast.liveness.probes import PROBE_S
from ironlb.speaker.fast.liveness.ringmode import Topology
from ironlb.speaker.fast.liveness.transport import Liveness
from ironlb.speaker.fast.liveness.upgrade import Mode
from tests.unit.speaker.fast.liveness.test_transport_formats import (
    INTERVAL,
    KEY,
    TIMEOUT,
    OldLiveness,
    addresses,
    until,
)
from tests.unit.speaker.fast.test_plane import free_port

NODES = 12
# A death is the timeout, then the watchers' agreement: at worst a lone watcher's three timeouts more.
AGREEMENT_S = 3 * TIMEOUT


async def speaker(name: str, names: dict[str, str], port: int) -> Liveness:
    """One node speaking in ring topology and joined (counting itself at once)."""
    node = Liveness(name, KEY, port, lambda _: None, interval=INTERVAL, timeout=TIMEOUT, grace=1.0,
                    topology=Topology.RING)
    node.set_peers(names)
    await node.start(f"::ffff:{names[name]}")
    node.speak()
    node.membership.counts_self = True
    return node


async def ring_cluster(names: dict[str, str], port: int, absent: str = "") -> dict[str, Liveness]:
    """Every node up but ABSENT (in the Node list, not started), in ring mode, its neighbours heard (not merely
    counted in their grace period), and counting every node up."""
    nodes = {name: await speaker(name, names, port) for name in names if name != absent}
    await until(lambda: all(n.mode is Mode.RING for n in nodes.values()), within=5.0)
    await until(lambda: all(n.ring.watch.neighbour_set - {absent} <= n.membership.heard()  # type: ignore[union-attr]
                            for n in nodes.values()), within=3.0)
    await until(lambda: all(n.alive == frozenset(nodes) for n in nodes.values()), within=3.0)
    return nodes


async def close_all(nodes: dict[str, Liveness]) -> None:
    for node in nodes.values():
        await node.close()


def test_ring_mode_heartbeats_four_peers_an_interval_and_no_one_dies_idle() -> None:
    async def run() -> None:
        names = addresses(NODES)
        nodes = await ring_cluster(names, free_port())
        try:
            everyone = frozenset(names)
            sent = {name: n.counters.sent for name, n in nodes.items()}
            started = time.monotonic()
            deaths = {name: n.counters.deaths for name, n in nodes.items()}
            while time.monotonic() - started < 3.0:
                assert all(n.alive == everyone for n in nodes.values())
                await asyncio.sleep(0.05)
            took = time.monotonic() - started
            rounds, probe_rounds = took / INTERVAL + 2, took / PROBE_S + 2
            for name, node in nodes.items():
                assert node.mode is Mode.RING
                assert len(node.ring.watch.neighbour_set) == 4  # type: ignore[union-attr]
                # four neighbours each round, every peer each probe round; the full mesh would be eleven a round
                assert node.counters.sent - sent[name] <= 4 * rounds + (NODES - 1) * probe_rounds
                assert node.counters.deaths == deaths[name]
        finally:
            await close_all(nodes)

    asyncio.run(run())


def test_ring_mode_a_killed_speaker_is_dropped_everywhere_and_counted_again_once_restarted() -> None:
    async def run() -> None:
        names = addresses(NODES)
        port = free_port()
        nodes = await ring_cluster(names, port)
        try:
            everyone = frozenset(names)
            victim = nodes.pop("n3")
            victim.speaking = False  # no goodbye: as a killed process
            await victim.close()
            took = await until(lambda: all("n3" not in n.alive for n in nodes.values()), within=3.0)
            assert took < TIMEOUT + AGREEMENT_S + 0.3  # the timeout, the agreement, rounds and the loop's slack
            assert all(n.alive == everyone - {"n3"} for n in nodes.values())
            nodes["n3"] = await speaker("n3", names, port)  # a new run of it: a new incarnation
            await until(lambda: all(n.alive == everyone for n in nodes.values()), within=5.0)
            await until(lambda: all(n.mode is Mode.RING for n in nodes.values()), within=5.0)
            await asyncio.sleep(1.0)
            assert all(n.alive == everyone for n in nodes.values())
        finally:
            await close_all(nodes)

    asyncio.run(run())


def test_ring_mode_a_speaker_that_says_goodbye_is_dropped_at_once_everywhere() -> None:
    async def run() -> None:
        names = addresses(NODES)
        nodes = await ring_cluster(names, free_port())
        try:
            everyone = frozenset(names)
            await nodes.pop("n5").close()  # LEAVE to every peer
            took = await until(lambda: all("n5" not in n.alive for n in nodes.values()), within=2.0)
            assert took < TIMEOUT  # before any timeout could have dropped it
            await asyncio.sleep(0.5)
            assert all(n.alive == everyone - {"n5"} for n in nodes.values())
        finally:
            await close_all(nodes)

    asyncio.run(run())


def test_a_speaker_of_version_2_brings_the_full_mesh_back_and_no_one_is_dropped() -> None:
    async def run() -> None:
        names = addresses(NODES + 1)
        port = free_port()
        nodes = await ring_cluster(names, port, absent="n12")
        try:
            others = frozenset(names) - {"n12"}
            old = OldLiveness("n12", KEY, port, lambda _: None, interval=INTERVAL, timeout=TIMEOUT, grace=1.0)
            old.set_peers(names)
            await old.start(f"::ffff:{names['n12']}")
            old.speaking = old.membership.counts_self = True
            deaths = {name: n.counters.deaths for name, n in nodes.items()}
            await until(lambda: all(n.mode is Mode.FULL_MESH for n in nodes.values()), within=1.0)
            started = time.monotonic()
            while time.monotonic() - started < 1.0:  # through the switch: the nodes up stay counted
                assert all(others <= n.alive for n in nodes.values())
                await asyncio.sleep(0.02)
            await until(lambda: all(n.alive == frozenset(names) for n in nodes.values()), within=3.0)
            assert all(n.counters.deaths == deaths[name] for name, n in nodes.items())
            nodes["n12"] = old
        finally:
            await close_all(nodes)

    asyncio.run(run())


def test_a_node_rolled_back_to_version_2_is_heard_again_and_brings_the_full_mesh_back() -> None:
    async def run() -> None:
        names = addresses(NODES + 1)
        port = free_port()
        nodes = await ring_cluster(names, port)
        try:
            await nodes.pop("n12").close()  # stopped for the rollback: its peers had its run in version 3
            await until(lambda: all("n12" not in n.alive for n in nodes.values()), within=AGREEMENT_S + 1.0)
            old = OldLiveness("n12", KEY, port, lambda _: None, interval=INTERVAL, timeout=TIMEOUT, grace=1.0)
            old.set_peers(names)
            await old.start(f"::ffff:{names['n12']}")
            old.speaking = old.membership.counts_self = True
            nodes["n12"] = old
            # Within a probe period each peer sends it version 2 again; it is heard, told, and found old.
            await until(lambda: all(n.alive == frozenset(names) for n in nodes.values()), within=5.0)
            assert all(n.mode is Mode.FULL_MESH for name, n in nodes.items() if name != "n12")
        finally:
            await close_all(nodes)

    asyncio.run(run())
