"""Heartbeat sends: a peer that cannot take one never holds up heartbeats to the others; rounds keep their cadence."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time

import pytest

from ironlb.speaker.fast.liveness.protocol import VERSION, Heartbeat, Kind, decode, encode
from ironlb.speaker.fast.liveness.transport import Liveness, next_due
from ironlb.speaker.fast.liveness.udpsocket import SNDBUF_BYTES
from tests.unit.speaker.fast.test_plane import free_port


class Socket:
    """A send buffer that is full for some destinations (a dead on-link peer's queue holds it)."""

    def __init__(self, full_for: set[str]) -> None:
        self.full_for, self.sent, self.format_probes = full_for, [], []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        if addr[0] in self.full_for:
            raise BlockingIOError
        (self.sent if data[3] == VERSION else self.format_probes).append(addr[0])
        return len(data)

    def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int]]:
        raise BlockingIOError  # nothing ever comes in


def heard_from(liveness: Liveness, *names: str) -> None:
    """As if NAMES had just sent us a heartbeat."""
    for name in names:
        liveness.membership.peers[name].last_contact = time.monotonic()


def test_a_full_send_buffer_drops_that_heartbeat_and_sends_the_rest() -> None:
    liveness = Liveness("n1", b"k" * 32, 7946, lambda _: None)
    liveness.set_peers({f"dead{i}": f"192.0.2.{200 + i}" for i in range(5)} | {"n2": "192.0.2.12"})
    heard_from(liveness, "n2", *(f"dead{i}" for i in range(5)))
    liveness._sock = Socket({f"::ffff:192.0.2.{200 + i}" for i in range(5)})  # type: ignore[assignment]
    for _ in range(3):
        liveness._send_all(Kind.ALIVE)
    assert liveness._sock.sent == ["::ffff:192.0.2.12"] * 3  # type: ignore[attr-defined]
    # The first round is a probe round: each peer not heard in version 3 is sent one version-3 heartbeat too.
    assert liveness._sock.format_probes == ["::ffff:192.0.2.12"]  # type: ignore[attr-defined]
    assert (liveness.counters.sent, liveness.counters.unsent, liveness.counters.datagrams_sent) == (3, 15 + 5, 4)


class RefusingSocket(Socket):
    """The kernel refuses datagrams to some destinations (a firewall, no route)."""

    def __init__(self, refused: dict[str, int]) -> None:
        super().__init__(set())
        self.refused = refused

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        if addr[0] in self.refused:
            raise OSError(self.refused[addr[0]], "refused")
        return super().sendto(data, addr)


def test_a_datagram_the_kernel_refuses_is_counted_and_logged_and_the_rest_are_sent(
        caplog: pytest.LogCaptureFixture) -> None:
    liveness = Liveness("n1", b"k" * 32, 7946, lambda _: None)
    liveness.set_peers({"n2": "192.0.2.12", "n3": "192.0.2.13", "n4": "192.0.2.14"})
    heard_from(liveness, "n2", "n3", "n4")
    liveness._sock = RefusingSocket({"::ffff:192.0.2.13": errno.EPERM,  # type: ignore[assignment]
                                     "::ffff:192.0.2.14": errno.ENETUNREACH})
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            liveness._send_all(Kind.ALIVE)
    assert liveness._sock.sent == ["::ffff:192.0.2.12"] * 3  # type: ignore[attr-defined]
    assert liveness.counters.unsent == 6 + 2  # every round's two, and the first round's format probes
    assert liveness.counters.send_errors == {"EPERM": 4, "ENETUNREACH": 4}
    refusals = [r.getMessage() for r in caplog.records if "refused a heartbeat" in r.getMessage()]
    assert len(refusals) == 2 and {"EPERM", "ENETUNREACH"} == {m.split("(")[1].split(";")[0] for m in refusals}


def test_silent_peers_get_a_probe_now_and_then_not_every_heartbeat() -> None:
    liveness = Liveness("n1", b"k" * 32, 7946, lambda _: None, interval=0.025, timeout=0.15)
    liveness.set_peers({f"off{i}": f"192.0.2.{200 + i}" for i in range(98)} | {"n2": "192.0.2.12"})
    heard_from(liveness, "n2")
    liveness._sock = sock = Socket(set())  # type: ignore[assignment]
    liveness._send_all(Kind.ALIVE)  # the first round goes to everyone: a peer just started must hear us
    assert len(sock.sent) == 99
    for _ in range(5):  # the next rounds (well within PROBE_S): only the peer that speaks to us
        liveness._send_all(Kind.ALIVE)
    assert sock.sent[99:] == ["::ffff:192.0.2.12"] * 5
    liveness._next_probe = 0.0  # PROBE_S later
    liveness._send_all(Kind.ALIVE)
    assert len(sock.sent) == 99 + 5 + 99
    liveness.membership.peers["n2"].last_contact = time.monotonic() - liveness.membership.grace - 0.1
    liveness._send_all(Kind.ALIVE)  # silent past the grace period: probed only, like the others
    assert len(sock.sent) == 99 + 5 + 99


def test_goodbyes_go_to_every_peer() -> None:
    port = free_port()
    listeners = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        for i, sock in enumerate(listeners):
            sock.bind((f"127.0.0.{3 + i}", port))
            sock.settimeout(2)

        async def run() -> None:
            liveness = Liveness("n1", b"k" * 32, port, lambda _: None)
            liveness.set_peers({"silent": "127.0.0.3", "n2": "127.0.0.4"})
            await liveness.start("::ffff:127.0.0.2")
            heard_from(liveness, "n2")
            liveness.speaking, liveness._next_probe = True, time.monotonic() + 60  # no probe due
            await liveness.close()

        asyncio.run(run())
        kinds = [decode(sock.recv(2048), b"k" * 32)[1] for sock in listeners]
        assert [msg.kind if msg else None for msg in kinds] == [Kind.LEAVE, Kind.LEAVE]
    finally:
        for sock in listeners:
            sock.close()


def test_the_heartbeat_socket_has_a_deep_send_buffer() -> None:
    async def run() -> int:
        liveness = Liveness("n1", b"k" * 32, free_port(), lambda _: None)
        await liveness.start("::1")
        try:
            assert liveness._sock is not None
            return liveness._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        finally:
            await liveness.close()

    assert asyncio.run(run()) >= SNDBUF_BYTES  # (the kernel doubles what was asked)


@pytest.mark.parametrize("case, due, woke, expected", [
    ("on time: one interval after it was due", 10.0, 10.0, 10.1),
    ("a little late: the cadence holds", 10.0, 10.03, 10.1),
    ("just under an interval late: still the cadence", 10.0, 10.099, 10.1),
    ("over an interval late: a fresh cadence from when it woke", 10.0, 10.15, 10.25),
    ("far behind (a stopped process): no burst of rounds to catch up", 10.0, 12.5, 12.6),
])
def test_next_due(case: str, due: float, woke: float, expected: float) -> None:
    assert next_due(due, woke, 0.1) == pytest.approx(expected), case


class SlowSocket(Socket):
    """Each send costs 4 ms of CPU, as HMACs and sends to many peers do."""

    def __init__(self) -> None:
        super().__init__(set())
        self.times: list[float] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        started = time.perf_counter()
        if addr[0] == "::ffff:192.0.2.12":
            self.times.append(started)
        while time.perf_counter() - started < 0.004:
            pass
        return super().sendto(data, addr)


def test_rounds_keep_their_cadence_however_long_their_sends_take() -> None:
    async def run() -> list[float]:
        liveness = Liveness("n1", b"k" * 32, 7946, lambda _: None, interval=0.05, timeout=1.0)
        liveness.set_peers({"n2": "192.0.2.12"} | {f"n{i}": f"192.0.2.{20 + i}" for i in range(3, 8)})
        heard_from(liveness, *liveness.peers)
        sock = SlowSocket()
        liveness._sock, liveness.speaking = sock, True  # type: ignore[assignment]
        liveness._begin_rounds()
        while len(sock.times) < 12:
            await asyncio.sleep(0.01)
        liveness._end_rounds()
        return sock.times

    times = asyncio.run(run())
    mean_gap = (times[-1] - times[1]) / (len(times) - 2)
    # Six peers at 4 ms is 24 ms a round: waiting an interval after the sends would make every gap ~74 ms.
    assert mean_gap < 0.062


def test_every_round_reads_what_came_in_and_runs_the_periodic_work_once() -> None:
    async def run() -> tuple[int, int]:
        liveness = Liveness("n1", b"k" * 32, 7946, lambda _: None, interval=0.01)
        liveness._sock = Socket(set())  # type: ignore[assignment]
        reads, rounds = [0], [0]
        liveness._readable = lambda: reads.__setitem__(0, reads[0] + 1)  # type: ignore[method-assign]

        def failing() -> None:
            rounds[0] += 1
            raise RuntimeError("a periodic task that fails")

        liveness.on_round.append(failing)
        liveness._begin_rounds()
        await asyncio.sleep(0.105)
        liveness._end_rounds()
        return reads[0], rounds[0]

    reads, rounds = asyncio.run(run())
    assert reads == rounds and 8 <= rounds <= 12  # one of each a round, and a failure stops no round


class Queued(Socket):
    """Datagrams waiting to be read, as a round finds them."""

    def __init__(self, datagrams: list[tuple[bytes, tuple[str, int]]]) -> None:
        super().__init__(set())
        self.queued = datagrams

    def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int]]:
        if not self.queued:
            raise BlockingIOError
        return self.queued.pop(0)


def test_a_rounds_reads_tell_the_alive_set_once_however_many_changed_it() -> None:
    told: list[frozenset[str]] = []
    liveness = Liveness("n1", b"k" * 32, 7946, told.append, grace=0.01)
    liveness.set_peers({"n2": "192.0.2.12", "n3": "192.0.2.13"})
    liveness.membership.tick(time.monotonic() + 1.0)  # neither heard within the grace period: both dead
    liveness._publish()
    assert told[-1] == frozenset()
    told.clear()
    back = [(encode(Heartbeat(Kind.ALIVE, name, 7, 1, liveness.incarnation), b"k" * 32), (f"::ffff:{addr}", 7946))
            for name, addr in liveness.peers.items()]
    liveness._sock = Queued(back)  # type: ignore[assignment]
    liveness._readable()  # both come back in one round's reads: one alive set told, not one per datagram
    assert told == [frozenset({"n2", "n3"})]
