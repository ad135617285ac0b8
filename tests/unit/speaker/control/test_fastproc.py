"""The fast plane in its own process, driven through FastProcess: what crosses, and what a busy or dead
control plane (or a dead fast plane) does. A real child process and real UDP heartbeats on loopback."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable

import pytest

from ironlb.speaker.control.fastproc import FastProcess
from ironlb.speaker.fast import wire
from ironlb.speaker.fast.claims import Claim, ClaimTable
from ironlb.speaker.fast.liveness.protocol import Heartbeat, Kind, decode, encode
from ironlb.speaker.fast.messages import Alive, LearnNodes, PutClaims, ToFast
from ironlb.speaker.state.desired import ALL_INTERFACES, AnnounceReason
from ironlb.speaker.state.ranking import Ranked, Table
from tests.unit.speaker.fast.test_plane import free_port

ME = "n1"
KEY = b"k" * 32
HOST = "::ffff:127.0.0.2"  # the fast plane binds here; the peer listens on 127.0.0.1, same port
SO_TIMESTAMPNS = 35


def entries(service: str, ip: str, *ranking: str) -> dict[str, tuple[Ranked, ...]]:
    """The one entry of SERVICE, for IP, ranking these nodes."""
    return {service: (Ranked(service, ip, AnnounceReason.ANNOUNCING, ranking, (ALL_INTERFACES,)),)}


async def settle(what: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the control loop run until WHAT holds."""
    async with asyncio.timeout(timeout):
        while not what():
            await asyncio.sleep(0.01)


@pytest.fixture
async def fast() -> AsyncIterator[FastProcess]:
    """A started fast plane process (no peers, not joined); what it reports is recorded."""
    seen: list[frozenset[str]] = []
    process = FastProcess(ME, KEY, free_port(), seen.append, lambda *_: None)
    await process.start(HOST)
    process.seen = seen  # type: ignore[attr-defined]
    yield process
    await process.close()
    assert process.process is not None and process.process.poll() is not None  # no process left behind


@pytest.fixture
def peer(fast: FastProcess) -> socket.socket:
    """A listening peer on 127.0.0.1 at the fast plane's port; kernel arrival times on every datagram."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind(("127.0.0.1", fast.config.port))
    fast.set_peers({"n2": "127.0.0.1"}, {"n2": {"127.0.0.1"}})
    yield sock
    sock.close()


def speak(peer: socket.socket, fast: FastProcess) -> None:
    """One heartbeat from the peer: a peer heard from lately gets every heartbeat, a silent one a probe."""
    peer.sendto(encode(Heartbeat(Kind.ALIVE, "n2", 7, 1, 0), KEY), ("127.0.0.2", fast.config.port))


def arrivals(sock: socket.socket) -> list[tuple[float, bytes]]:
    """Every datagram waiting on SOCK, with the kernel's arrival time (seconds, CLOCK_REALTIME)."""
    out = []
    sock.setblocking(False)
    while True:
        try:
            data, ancillary, _, _ = sock.recvmsg(2048, 64)
        except BlockingIOError:
            return out
        stamp = next(struct.unpack("qq", d[:16]) for level, kind, d in ancillary if kind == SO_TIMESTAMPNS)
        out.append((stamp[0] + stamp[1] / 1e9, data))


async def test_claims_cross_and_ownership_comes_back(fast: FastProcess) -> None:
    table = Table(ME).evolve({**entries("ns/a", "203.0.113.1", ME, "n2"), **entries("ns/b", "203.0.113.2", "n2", ME),
                              **entries("ns/c", "203.0.113.3", "n2", "n3")})
    fast.publish(table)
    assert fast._sent.keys() == {"203.0.113.1", "203.0.113.2"}  # n3's IP does not rank us: nothing sent
    await fast.join()
    await settle(lambda: fast.owned == {"203.0.113.1": ALL_INTERFACES, "203.0.113.2": ALL_INTERFACES})
    assert ME in fast.alive and fast.seen[-1] == fast.alive  # type: ignore[attr-defined]
    sent = fast._channel.sent  # type: ignore[union-attr]
    # A change after us in a ranking changes no claim: nothing crosses. One before us does.
    table = table.evolve(entries("ns/a", "203.0.113.1", ME, "n3"))
    fast.publish(table)
    assert fast._channel.sent == sent  # type: ignore[union-attr]
    fast.publish(table.evolve({}, ["ns/b"]))
    await settle(lambda: set(fast.owned) == {"203.0.113.1"})


def test_new_node_bits_cross_before_the_claims_that_use_them() -> None:
    process = FastProcess(ME, KEY, free_port(), lambda _: None, lambda *_: None)
    sent: list[ToFast] = []
    process._send = sent.append  # type: ignore[method-assign]
    table = Table(ME).evolve({**entries("ns/a", "203.0.113.1", "n3", "n2", ME), **entries("ns/b", "203.0.113.2", ME)})
    process.publish(table)
    assert [type(m) for m in sent] == [LearnNodes, PutClaims] and sent[0] == LearnNodes(0, ["n3", "n2"])
    sent.clear()
    table = table.evolve(entries("ns/b", "203.0.113.2", ME, "n4"))  # n4 after us: no bit, no claim changes
    process.publish(table)
    assert sent == []
    table = table.evolve(entries("ns/b", "203.0.113.2", "n4", "n2", ME))  # n4 ahead now: its bit first
    process.publish(table)
    assert sent == [LearnNodes(2, ["n4"]), PutClaims({"203.0.113.2": (Claim(0b110, ALL_INTERFACES),)})]
    far = ClaimTable(ME)  # what the fast plane makes of it all, with n2 alive
    far.learn(0, ["n3", "n2"])
    far.learn(sent[0].start, sent[0].names)  # type: ignore[union-attr]
    far.update(process._sent)
    far.set_alive(frozenset({ME, "n2"}))
    assert far.interfaces_for("203.0.113.1") is None and far.interfaces_for("203.0.113.2") is None
    far.set_alive(frozenset({ME, "n3"}))
    assert far.interfaces_for("203.0.113.1") is None and far.interfaces_for("203.0.113.2") == ALL_INTERFACES


async def test_the_fast_plane_refuses_what_is_not_its_message_and_goes_on(
        fast: FastProcess, caplog: pytest.LogCaptureFixture) -> None:
    assert fast._channel is not None
    with caplog.at_level(logging.ERROR):
        for frame in (b"garbage", wire.encode(Alive(frozenset({ME})))):  # not a pickle; a message it never takes
            fast._channel.sock.send(frame)
        await fast.join()  # its loop went on
        await settle(lambda: len(refusals(caplog)) == 2)
    assert ME in fast.alive
    garbled, unhandled = refusals(caplog)
    assert garbled.startswith("refused a frame from the other process (garbled: ")
    assert unhandled.startswith("refused a frame from the other process (unhandled: Alive)")


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the fast plane's channel said it refused (its log records cross to this process)."""
    return [r.getMessage() for r in caplog.records if r.name == "ironlb.speaker.fast.wire"]


async def test_heartbeats_keep_time_while_the_control_plane_holds_the_interpreter(
        fast: FastProcess, peer: socket.socket) -> None:
    await fast.join()
    speak(peer, fast)
    await asyncio.sleep(0.1)
    arrivals(peer)  # what came before the busy second does not count
    started = time.time()
    spins = 0
    while time.time() - started < 1.0:  # the control plane computing, never yielding, never releasing the GIL
        spins += sum(i * i for i in range(1000)) > 0
    during = [t for t, _ in arrivals(peer) if t >= started]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert spins > 100 and len(during) >= 8 and max(gaps) < 0.15, gaps


async def test_the_fast_plane_says_goodbye_when_the_control_plane_is_gone(
        fast: FastProcess, peer: socket.socket) -> None:
    await fast.join()
    assert fast._channel is not None and fast.process is not None
    fast._closing = True  # what follows is a crash of the control plane: nobody asks the process to close
    fast._channel.close()  # as a SIGKILL of the control plane would: its end of the socket pair closes
    await asyncio.to_thread(fast.process.wait, 5)
    kinds = [msg.kind for _, data in arrivals(peer) if (msg := decode(data, KEY)[1]) is not None]
    assert kinds[-1] is Kind.LEAVE and Kind.ALIVE in kinds  # peers take over at once, not after a timeout


async def test_a_fast_plane_that_dies_stops_the_speaker(fast: FastProcess) -> None:
    assert fast.process is not None and fast.exited is not None
    os.kill(fast.process.pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match="fast plane's process ended"):
        await asyncio.wait_for(fast.exited, 5)


async def test_a_heartbeat_port_in_use_fails_the_start() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as taken:
        taken.bind(("::", port))
        process = FastProcess(ME, KEY, port, lambda _: None, lambda *_: None)
        with pytest.raises(OSError, match=f"cannot bind the heartbeat port {port}"):
            await process.start()
        assert process.process is not None and process.process.poll() is not None


def test_a_first_claim_waits_for_the_gate_a_withdrawal_never_does() -> None:
    process = FastProcess(ME, KEY, free_port(), lambda _: None, lambda *_: None)
    sent: list[ToFast] = []
    process._send = sent.append  # type: ignore[method-assign]
    asked: list[str] = []
    table = Table(ME).evolve({**entries("ns/a", "203.0.113.1", ME), **entries("ns/b", "203.0.113.2", ME)})
    process.publish(table, lambda ip, _: asked.append(ip) or ip != "203.0.113.2")
    assert sent == [PutClaims({"203.0.113.1": (Claim(0, ALL_INTERFACES),)})] and sorted(asked) == [
        "203.0.113.1", "203.0.113.2"]
    sent.clear()
    process.publish(table, lambda ip, _: True, again=["203.0.113.2"])  # released: its claim goes now
    assert sent == [PutClaims({"203.0.113.2": (Claim(0, ALL_INTERFACES),)})]
    sent.clear()
    process.publish(table.evolve({}, ["ns/a"]), lambda ip, _: False)  # a withdrawal is never asked about
    assert sent == [PutClaims({"203.0.113.1": ()})]
    sent.clear()
    process.publish(table.evolve(entries("ns/b", "203.0.113.2", "n2", ME)), lambda ip, _: False)
    assert sent[-1] == PutClaims({"203.0.113.2": (Claim(0b1, ALL_INTERFACES),)})  # already claimed: not first
