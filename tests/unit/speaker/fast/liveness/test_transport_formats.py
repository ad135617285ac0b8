"""Speakers on loopback sockets: new ones find each other and speak version 3, an old one is sent version 2."""

from __future__ import annotations

import asyncio
import time

from ironlb.speaker.fast.liveness.protocol import RING_VERSION, VERSION, Decoded, Heartbeat
from ironlb.speaker.fast.liveness.transport import Liveness
from ironlb.speaker.fast.liveness.upgrade import Formats
from tests.unit.speaker.fast.test_plane import free_port

KEY = b"k" * 32
INTERVAL, TIMEOUT = 0.02, 0.15


class OldFormats(Formats):
    """A speaker of version 2 only: it sends that to everyone."""

    def version_for(self, name: str) -> int:
        return VERSION

    def to_probe(self, peers: object) -> list[str]:
        return []

    def heard(self, msg: Heartbeat, now: float = 0.0) -> bool:
        super().heard(msg, now)
        return False  # it tells no one of a version it does not speak


class OldLiveness(Liveness):
    """Today's speaker: version 2 out, and a version-3 datagram refused as an unknown version."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.formats = OldFormats()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if data[3] != VERSION:
            self.counters.datagrams_received += 1
            self._reject(Decoded.UNKNOWN_VERSION)
            return
        super().datagram_received(data, addr)


def addresses(count: int) -> dict[str, str]:
    """Node name -> its loopback address."""
    return {f"n{i}": f"127.0.0.{2 + i}" for i in range(count)}


async def cluster(names: dict[str, str], port: int, old: set[str] = frozenset()) -> dict[str, Liveness]:  # type: ignore[assignment]
    """Every node speaking and joined (counting itself at once: the join gate is not what is tested here)."""
    nodes: dict[str, Liveness] = {}
    for name, addr in names.items():
        kind = OldLiveness if name in old else Liveness
        node = kind(name, KEY, port, lambda _: None, interval=INTERVAL, timeout=TIMEOUT, grace=1.0)
        node.set_peers(names)
        await node.start(f"::ffff:{addr}")
        node.speaking = node.membership.counts_self = True
        nodes[name] = node
    return nodes


def all_heard(nodes: dict[str, Liveness]) -> bool:
    """Has every node heard every other in this run (not merely counted it alive in its grace period)?"""
    return all(n.membership.heard() == set(nodes) - {name} for name, n in nodes.items())


async def until(check: object, within: float) -> float:
    """Seconds until CHECK() holds; fails past WITHIN."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < within, "not within the bound"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def test_new_speakers_speak_version_3_to_each_other_and_version_2_to_an_old_one() -> None:
    async def run() -> None:
        names = addresses(5)
        nodes = await cluster(names, free_port(), old={"n4"})
        try:
            everyone = frozenset(names)
            await until(lambda: all_heard(nodes), within=3.0)
            await until(lambda: all(nodes[a].formats.version_for(b) == RING_VERSION
                                    for a in names for b in names if a != b and "n4" not in (a, b)), within=3.0)
            for name in ("n0", "n1", "n2", "n3"):
                assert nodes[name].formats.version_for("n4") == VERSION  # heard only in version 2
            await asyncio.sleep(1.0)  # format probes come and go: the old speaker keeps every node alive
            assert all(n.alive == everyone for n in nodes.values())
            assert nodes["n4"].counters.deaths == 0 and nodes["n0"].counters.deaths == 0
            assert nodes["n4"].counters.rejected.get(Decoded.UNKNOWN_VERSION.value, 0) > 0  # the probes
            counters = nodes["n0"].counters
            assert counters.datagrams_sent > counters.sent > 0 and counters.datagrams_received >= counters.received
        finally:
            for node in nodes.values():
                await node.close()

    asyncio.run(run())


def test_a_speaker_killed_without_goodbye_is_dropped_by_every_other_within_the_timeout() -> None:
    async def run() -> None:
        names = addresses(8)
        nodes = await cluster(names, free_port())
        try:
            everyone = frozenset(names)
            await until(lambda: all_heard(nodes), within=3.0)
            victim = nodes.pop("n3")
            victim.speaking = False  # no goodbye: as a killed process
            await victim.close()
            took = await until(lambda: all("n3" not in n.alive for n in nodes.values()), within=2.0)
            assert took < TIMEOUT + 4 * INTERVAL + 0.2  # the timeout, a round, and the loop's slack
            assert all(n.alive == everyone - {"n3"} for n in nodes.values())
        finally:
            for node in nodes.values():
                await node.close()

    asyncio.run(run())
