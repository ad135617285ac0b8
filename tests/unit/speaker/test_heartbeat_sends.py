"""Heartbeat sends: a peer that cannot take one never holds up heartbeats to the others."""

from __future__ import annotations

import asyncio
import socket

from ironlb.speaker.liveness.protocol import Kind
from ironlb.speaker.liveness.transport import SNDBUF_BYTES, Liveness
from tests.unit.speaker.fast.test_plane import free_port


class Socket:
    """A send buffer that is full for some destinations (a dead on-link peer's queue holds it)."""

    def __init__(self, full_for: set[str]) -> None:
        self.full_for, self.sent = full_for, []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        if addr[0] in self.full_for:
            raise BlockingIOError
        self.sent.append(addr[0])
        return len(data)


def test_a_full_send_buffer_drops_that_heartbeat_and_sends_the_rest() -> None:
    liveness = Liveness("n1", b"k" * 32, 7946, lambda _: None)
    liveness.set_peers({f"dead{i}": f"192.0.2.{200 + i}" for i in range(5)} | {"n2": "192.0.2.12"})
    liveness._sock = Socket({f"::ffff:192.0.2.{200 + i}" for i in range(5)})  # type: ignore[assignment]
    for _ in range(3):
        liveness._send_all(Kind.ALIVE)
    assert liveness._sock.sent == ["::ffff:192.0.2.12"] * 3  # type: ignore[attr-defined]
    assert (liveness.counters.sent, liveness.counters.unsent) == (3, 15)


def test_the_heartbeat_socket_has_a_deep_send_buffer() -> None:
    async def run() -> int:
        liveness = Liveness("n1", b"k" * 32, free_port(), lambda _: None)
        await liveness.start("::1")
        try:
            assert liveness._sock is not None
            return liveness._sock.sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        finally:
            await liveness.close()

    assert asyncio.run(run()) >= SNDBUF_BYTES  # (the kernel doubles what was asked)
