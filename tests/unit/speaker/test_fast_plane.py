"""The fast plane on its own thread: ownership from the table and the alive set, unstalled by the control plane."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable

import pytest

from ironlb.speaker.announcer import Interface, ResponderFactory
from ironlb.speaker.desired import ALL_INTERFACES, AnnounceReason
from ironlb.speaker.fast.plane import FastPlane
from ironlb.speaker.l2.io import FakePacketIO
from ironlb.speaker.l2.responder import Responder
from ironlb.speaker.ranking import Ranked, Table

ME = "n1"
ETH0 = Interface("eth0", 2, "02:00:00:00:00:01")


def fake_responders(_: asyncio.AbstractEventLoop) -> ResponderFactory:
    """Responders over in-memory packet I/O."""
    return lambda iface: Responder(iface.name, iface.mac, FakePacketIO(), FakePacketIO(), "fe80::1")


def free_port() -> int:
    """A UDP port nobody uses right now."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::", 0))
        return int(s.getsockname()[1])


def entries(service: str, ip: str, *ranking: str) -> dict[str, tuple[Ranked, ...]]:
    """The one entry of SERVICE, for IP, ranking these nodes."""
    return {service: (Ranked(service, ip, AnnounceReason.ANNOUNCING, ranking, (ALL_INTERFACES,)),)}


def wait(what: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll until WHAT holds."""
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def plane() -> FastPlane:
    """A started fast plane (no peers, not joined) whose control loop is this test's own."""
    control = asyncio.new_event_loop()
    seen: list[frozenset[str]] = []
    fast = FastPlane(ME, b"k" * 32, free_port(), fake_responders, seen.append, control)
    fast.start("::1")
    fast.seen = seen  # type: ignore[attr-defined]
    yield fast
    control.run_until_complete(fast.close())
    control.close()


def alive(fast: FastPlane, nodes: set[str]) -> None:
    """Make the fast plane see this alive set (as its failure detector would report it)."""
    fast.loop.call_soon_threadsafe(fast._alive_changed, frozenset(nodes))
    wait(lambda: fast.alive == frozenset(nodes))


def test_ownership_follows_the_first_alive_node_without_a_new_table(plane: FastPlane) -> None:
    table = Table(ME).evolve({**entries("ns/a", "203.0.113.1", ME, "n2"), **entries("ns/b", "203.0.113.2", "n2", ME),
                              **entries("ns/c", "203.0.113.3", "n2", "n3")})
    plane.set_interfaces({"eth0": ETH0})
    plane.publish(table)
    alive(plane, {ME, "n2", "n3"})
    wait(lambda: plane.owned == {"203.0.113.1": ALL_INTERFACES})
    alive(plane, {ME, "n3"})  # n2 died: its IP that ranks me next is mine; the one ranking n3 next is not
    wait(lambda: set(plane.owned) == {"203.0.113.1", "203.0.113.2"})
    assert plane.table is table  # no recompute, no new table
    assert plane.announcer.owned() == {"eth0": frozenset({"203.0.113.1", "203.0.113.2"})}
    alive(plane, {ME, "n2", "n3"})  # back: it takes its IP again
    wait(lambda: set(plane.owned) == {"203.0.113.1"})
    control_loop_told = plane.control
    control_loop_told.run_until_complete(asyncio.sleep(0.05))
    assert plane.seen[-1] == frozenset({ME, "n2", "n3"})  # type: ignore[attr-defined]


def test_a_new_table_moves_only_what_changed(plane: FastPlane) -> None:
    one = Table(ME).evolve({**entries("ns/a", "203.0.113.1", ME), **entries("ns/b", "203.0.113.2", ME)})
    plane.set_interfaces({"eth0": ETH0})
    plane.publish(one)
    alive(plane, {ME})
    wait(lambda: set(plane.owned) == {"203.0.113.1", "203.0.113.2"})
    plane.publish(one.evolve(entries("ns/b", "203.0.113.2", "n2", ME), ["ns/a"]))
    wait(lambda: set(plane.owned) == {"203.0.113.2"})
    alive(plane, {ME, "n2"})
    wait(lambda: plane.owned == {})
    assert plane.announcer.owned() == {}


def test_heartbeats_go_out_while_the_control_plane_is_busy(plane: FastPlane) -> None:
    peer = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    peer.bind(("::1", 0))
    peer.settimeout(0.5)
    arrivals: list[float] = []

    def listen() -> None:
        with contextlib.suppress(OSError):
            while True:
                peer.recv(2048)
                arrivals.append(time.monotonic())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    plane.liveness.port = peer.getsockname()[1]  # heartbeats to our listening socket
    plane.set_peers({"n2": "::1"}, {"n2": {"::1"}})
    plane.control.run_until_complete(plane.join())
    try:
        started = time.monotonic()
        spins = 0
        while time.monotonic() - started < 1.0:  # the control plane's thread computing, never yielding
            spins += sum(i * i for i in range(1000)) > 0
        during = [t for t in arrivals if t >= started]
        gaps = [b - a for a, b in itertools.pairwise(during)]
        assert spins > 100 and len(during) >= 8 and max(gaps) < 0.2, gaps
    finally:
        peer.close()
        listener.join(1.0)


def test_a_table_changing_thousands_of_ips_is_taken_a_batch_per_turn(plane: FastPlane) -> None:
    # A relist can change every IP at once: the fast loop re-decides them a batch per turn, so a
    # heartbeat or a reply waits for one batch, and every table published meanwhile is taken too.
    from ironlb.speaker.fast.plane import TAKE_BATCH

    ips = [f"2001:db8::{i:x}" for i in range(1, 4 * TAKE_BATCH + 2)]
    first = Table(ME).evolve({k: v for i, ip in enumerate(ips) for k, v in entries(f"ns/s{i}", ip, ME).items()})
    batches: list[int] = []  # IPs re-decided per call
    update = plane._update
    plane._update = lambda ips: (batches.append(len(ips := list(ips))), update(ips))[1]  # type: ignore[method-assign]
    plane.set_interfaces({"eth0": ETH0})
    alive(plane, {ME})
    batches.clear()
    plane.publish(first)
    # A second table while the first is still being taken: half of the IPs rank n2 first now (n2 alive).
    second = first.evolve({k: v for i, ip in enumerate(ips) if i % 2
                           for k, v in entries(f"ns/s{i}", ip, "n2", ME).items()})
    plane.publish(second)
    wait(lambda: len(plane.owned) == len(ips))
    assert max(batches) == TAKE_BATCH and sum(batches) >= len(ips)
    alive(plane, {ME, "n2"})
    wait(lambda: set(plane.owned) == {ip for i, ip in enumerate(ips) if not i % 2})
    assert plane.table is second
