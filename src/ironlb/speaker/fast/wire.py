"""The link between the speaker's two processes: pickled messages over a Unix SEQPACKET socket pair.

SEQPACKET keeps message boundaries and order, and the kernel tells each end when the other is gone
(EOF), so a dead process is noticed at once. Both ends are non-blocking and never wait on each other:
what the socket cannot take now is queued and sent when it is writable, so neither process can stall
the other (a full buffer both ways cannot deadlock). Both processes are this program, so pickle is safe.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
BUFFER_BYTES = 4 << 20  # a relist's table messages fit without waiting for the reader
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
READ_BATCH = 64  # messages handled per wake-up, at most: the loop's timers and other sockets get their turn
READ_BUDGET_S = 0.002  # and for no longer than this (the rest on the next wake-up)
MAX_MESSAGE = 1 << 20  # larger messages are split by their senders (table chunks)
Message = tuple[Any, ...]  # (kind, *arguments)


def pair() -> tuple[socket.socket, socket.socket]:
    """A connected socket pair with deep buffers (this process's end, the other process's end)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for sock in (ours, theirs):
        deepen(sock)
    return ours, theirs


def deepen(sock: socket.socket) -> None:
    """Raise both buffers (past the system maximum where we may)."""
    for force, plain in ((SO_SNDBUFFORCE, socket.SO_SNDBUF), (SO_RCVBUFFORCE, socket.SO_RCVBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, BUFFER_BYTES)
        except OSError:  # without CAP_NET_ADMIN: as much as the system allows
            sock.setsockopt(socket.SOL_SOCKET, plain, BUFFER_BYTES)


class Channel:
    """One end: `send` queues a message, `on_message` gets each one received, `on_closed` once at EOF."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop,
                 on_message: Callable[[Message], None], on_closed: Callable[[], None]) -> None:
        self.sock, self.loop = sock, loop
        self.on_message, self.on_closed = on_message, on_closed
        self.sent = self.received = 0
        self._queue: deque[bytes] = deque()
        self._writing = False
        self._closed = False
        self._buffer = bytearray(MAX_MESSAGE)  # one buffer, read into: no allocation per message
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._readable)

    def send(self, *message: Any) -> None:
        """Send MESSAGE (a tuple: kind first) as soon as the socket takes it; order is kept."""
        if self._closed:
            return
        self._queue.append(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
        if not self._writing:
            self._flush()

    @property
    def backlog(self) -> int:
        """Messages waiting for room in the socket."""
        return len(self._queue)

    def _flush(self) -> None:
        while self._queue:
            try:
                self.sock.send(self._queue[0])
            except (BlockingIOError, InterruptedError):
                if not self._writing:
                    self._writing = True
                    self.loop.add_writer(self.sock.fileno(), self._flush)
                return
            except OSError:  # the other end is gone: the reader sees EOF and says so
                self._queue.clear()
                break
            self._queue.popleft()
            self.sent += 1
        if self._writing:
            self._writing = False
            self.loop.remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        deadline = time.perf_counter() + READ_BUDGET_S
        for _ in range(READ_BATCH):
            if time.perf_counter() > deadline:
                return  # the rest on the next wake-up (the socket is still readable)
            try:
                size = self.sock.recv_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                size = 0
            if not size:  # EOF (no message of ours is empty)
                self._eof()
                return
            self.received += 1
            self.on_message(pickle.loads(memoryview(self._buffer)[:size]))

    def _eof(self) -> None:
        if not self._closed:
            self.close()
            self.on_closed()

    def close(self) -> None:
        """Stop reading and writing; close the socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.loop.remove_reader(self.sock.fileno())
        if self._writing:
            self.loop.remove_writer(self.sock.fileno())
        self.sock.close()
