"""The fast plane on its loop: ownership from this node's claims and the alive set, a batch per turn."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Mapping

import pytest

from ironlb.speaker.fast.announcer import Diff, Interface, ResponderFactory
from ironlb.speaker.fast.claims import Claim, Claims
from ironlb.speaker.fast.l2.responder import Responder
from ironlb.speaker.fast.nodeindex import NodeIndex
from ironlb.speaker.fast.plane import TAKE_BATCH, FastPlane
from ironlb.speaker.state.desired import ALL_INTERFACES
from tests.fakeio import FakePacketIO

ME = "n1"
ETH0 = Interface("eth0", 2, "02:00:00:00:00:01")


def fake_responders() -> ResponderFactory:
    """Responders over in-memory packet I/O."""
    return lambda iface: Responder(iface.name, iface.mac, FakePacketIO(), FakePacketIO(), "fe80::1")


def free_port() -> int:
    """A UDP port nobody uses right now."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::", 0))
        return int(s.getsockname()[1])


def claim(*ahead: str) -> tuple[str, ...]:
    """One claim on every default interface, behind these nodes (`put` writes it in node bits)."""
    return ahead


def put(fast: FastPlane, changes: Mapping[str, tuple[str, ...] | None]) -> None:
    """Send the fast plane claims as the control plane does: new node names first (None drops the IP)."""
    sender: NodeIndex = fast.sender  # type: ignore[attr-defined]
    known = len(sender)
    claims: dict[str, Claims] = {ip: () if ahead is None else (Claim(sender.assign(ahead), ALL_INTERFACES),)
                                 for ip, ahead in changes.items()}
    fast.learn(known, sender.names_from(known))
    fast.put(claims)


async def settle(what: Callable[[], bool], timeout: float = 3.0) -> None:
    """Let the loop run until WHAT holds."""
    async with asyncio.timeout(timeout):
        while not what():
            await asyncio.sleep(0.005)


class Recorder:
    """What the plane reports: alive sets, and each ownership change."""

    def __init__(self) -> None:
        self.alive: list[frozenset[str]] = []
        self.owned: list[tuple[dict[str, frozenset[str] | None], Diff]] = []

    def on_alive(self, alive: frozenset[str]) -> None:
        self.alive.append(alive)

    def on_owned(self, changes: Mapping[str, frozenset[str] | None], diff: Diff) -> None:
        self.owned.append((dict(changes), diff))


@pytest.fixture
async def plane() -> AsyncIterator[FastPlane]:
    """A started fast plane (no peers, not joined), with a recorder of its reports."""
    seen = Recorder()
    fast = FastPlane(ME, b"k" * 32, free_port(), fake_responders(), seen.on_alive, seen.on_owned)
    await fast.start("::1")
    fast.seen = seen  # type: ignore[attr-defined]
    fast.sender = NodeIndex()  # type: ignore[attr-defined]  # the control plane's index
    yield fast
    await fast.close()


def alive(fast: FastPlane, nodes: set[str]) -> None:
    """Make the fast plane see this alive set (as its failure detector would report it)."""
    fast._alive_changed(frozenset(nodes))


async def test_ownership_follows_the_first_alive_node_without_new_claims(plane: FastPlane) -> None:
    plane.set_interfaces({"eth0": ETH0})
    put(plane, {"203.0.113.1": claim(), "203.0.113.2": claim("n2")})  # n3's IP gives us no claim at all
    alive(plane, {ME, "n2", "n3"})
    await settle(lambda: plane.owned == {"203.0.113.1": ALL_INTERFACES})
    alive(plane, {ME, "n3"})  # n2 died: the IP it was ahead of us on is ours now (on the next turn)
    await settle(lambda: set(plane.owned) == {"203.0.113.1", "203.0.113.2"})
    assert plane.announcer.owned() == {"eth0": frozenset({"203.0.113.1", "203.0.113.2"})}
    changes, diff = plane.seen.owned[-1]  # type: ignore[attr-defined]
    assert changes == {"203.0.113.2": ALL_INTERFACES} and diff.added == (("203.0.113.2", "eth0"),)
    alive(plane, {ME, "n2", "n3"})  # back: it takes its IP again
    await settle(lambda: set(plane.owned) == {"203.0.113.1"})
    assert plane.seen.alive[-1] == frozenset({ME, "n2", "n3"})  # type: ignore[attr-defined]


async def test_new_claims_move_only_what_changed(plane: FastPlane) -> None:
    plane.set_interfaces({"eth0": ETH0})
    put(plane, {"203.0.113.1": claim(), "203.0.113.2": claim()})
    alive(plane, {ME})
    await settle(lambda: set(plane.owned) == {"203.0.113.1", "203.0.113.2"})
    plane.seen.owned.clear()  # type: ignore[attr-defined]
    put(plane, {"203.0.113.1": None, "203.0.113.2": claim("n2")})  # one dropped, one re-ranked behind n2 (dead)
    await settle(lambda: set(plane.owned) == {"203.0.113.2"})
    assert [c for c, _ in plane.seen.owned] == [{"203.0.113.1": None}]  # type: ignore[attr-defined]
    alive(plane, {ME, "n2"})
    await settle(lambda: plane.owned == {})
    assert plane.announcer.owned() == {}


async def test_claims_changing_thousands_of_ips_are_taken_a_batch_per_turn(plane: FastPlane) -> None:
    # A relist can change every IP at once: the loop re-decides them a batch per turn, so a heartbeat
    # or a reply waits for one batch, and claims sent meanwhile are taken too.
    ips = [f"2001:db8::{i:x}" for i in range(1, 4 * TAKE_BATCH + 2)]
    batches: list[int] = []
    update = plane._update
    plane._update = lambda ips: (batches.append(len(ips := list(ips))), update(ips))[1]  # type: ignore[method-assign]
    plane.set_interfaces({"eth0": ETH0})
    alive(plane, {ME})
    batches.clear()
    put(plane, {ip: claim() for ip in ips})
    turns = 0
    while plane._taking:  # each turn of the loop: one batch, then timers and sockets get their go
        await asyncio.sleep(0)
        turns += 1
        if turns == 1:  # new claims while the first ones are still being taken: half behind n2 (dead)
            put(plane, {ip: claim("n2") for i, ip in enumerate(ips) if i % 2})
    assert len(plane.owned) == len(ips)
    assert max(batches) == TAKE_BATCH and turns >= 4
    alive(plane, {ME, "n2"})
    await settle(lambda: set(plane.owned) == {ip for i, ip in enumerate(ips) if not i % 2})


async def test_leaving_and_fencing_release_everything(plane: FastPlane) -> None:
    plane.set_interfaces({"eth0": ETH0})
    put(plane, {"203.0.113.1": claim(), "203.0.113.2": claim("n2")})
    alive(plane, {ME})
    await settle(lambda: len(plane.owned) == 2)
    alive(plane, set())  # fenced (we no longer count ourselves): nothing is ours, a batch per turn
    await settle(lambda: plane.owned == {})
    assert plane.announcer.owned() == {}


async def test_a_peer_alive_before_any_claim_names_it_is_counted_once_it_does(plane: FastPlane) -> None:
    # The alive set holds names; claims hold bits. A peer heard before its bit was sent must still win
    # the IPs it is ahead on when the claims naming it arrive.
    plane.set_interfaces({"eth0": ETH0})
    alive(plane, {ME, "n2"})
    put(plane, {"203.0.113.1": claim("n2"), "203.0.113.2": claim()})
    await settle(lambda: set(plane.owned) == {"203.0.113.2"})
    plane.seen.owned.clear()  # type: ignore[attr-defined]
    alive(plane, {ME, "n2", "n3"})  # a peer nobody ranks ahead of us: nothing is re-decided, nothing reported
    for _ in range(3):
        await asyncio.sleep(0)
    assert plane.seen.owned == [] and not plane._taking  # type: ignore[attr-defined]
    alive(plane, {ME, "n3"})
    await settle(lambda: set(plane.owned) == {"203.0.113.1", "203.0.113.2"})


async def test_many_peers_dying_at_once_move_their_ips_a_batch_per_turn(plane: FastPlane) -> None:
    # 98 Nodes declared dead together (never heard by the end of the grace period, a rack lost): their
    # IPs are re-decided a batch per turn, so the heartbeat loop is never held up by all of them.
    peers = [f"p{i}" for i in range(98)]
    ips = [f"2001:db8::{i:x}" for i in range(1, 4 * TAKE_BATCH + 2)]
    plane.set_interfaces({"eth0": ETH0})
    alive(plane, {ME, *peers})
    put(plane, {ip: claim(peers[i % len(peers)]) for i, ip in enumerate(ips)})
    await settle(lambda: not plane._taking)
    assert plane.owned == {}
    batches: list[int] = []
    update = plane._update
    plane._update = lambda ips: (batches.append(len(ips := list(ips))), update(ips))[1]  # type: ignore[method-assign]
    alive(plane, {ME})
    assert batches == []  # nothing moved inside the alive-set change itself
    await settle(lambda: len(plane.owned) == len(ips))
    assert max(batches) == TAKE_BATCH and len(batches) >= 4
