"""The link between the speaker's two processes: the messages of `fast.messages` over a Unix SEQPACKET pair.

SEQPACKET keeps message boundaries and order, and the kernel tells each end when the other is gone
(EOF), so a dead process is noticed at once. Both ends are non-blocking and never wait on each other:
what the socket cannot take now is queued and sent when it is writable, so neither process can stall
the other (a full buffer both ways cannot deadlock).

One encoder (`encode`) and one decoder (`decode`). A frame is a pickle: both ends are this program, and
the socket pair has no name, so only they write to it. The decoder still trusts nothing: it builds no
class but the messages and the values they carry (`messages.CARRIED`), and returns only a message of a
type the receiving end handles. Anything else is refused with `Refused` and its reason; the channel logs
the first refusal of each reason, counts them all, and reads on.
"""

from __future__ import annotations

import asyncio
import io
import logging
import pickle
import socket
import time
from collections import deque
from collections.abc import Callable, Container, Mapping
from typing import Any

from ironlb.speaker.fast.messages import CARRIED, FROM_FAST, TO_FAST, Message, Refusal

log = logging.getLogger(__name__)
BUFFER_BYTES = 4 << 20  # a relist's table messages fit without waiting for the reader
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
READ_BATCH = 64  # messages handled per wake-up, at most: the loop's timers and other sockets get their turn
READ_BUDGET_S = 0.002  # and for no longer than this (the rest on the next wake-up)
MAX_MESSAGE = 1 << 20  # larger messages are split by their senders (table chunks)
Handler = Callable[[Any], None]  # takes one message, of the type it is keyed by
Handlers = Mapping[type, Handler]


class Refused(Exception):
    """A frame the decoder will not turn into a message."""

    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


_BUILDABLE = {(cls.__module__, cls.__qualname__): cls for cls in (*TO_FAST, *FROM_FAST, *CARRIED)}


class _Unpickler(pickle.Unpickler):
    """Builds only the classes in _BUILDABLE (builtins' values need no class lookup)."""

    def find_class(self, module: str, name: str) -> Any:
        """The class MODULE.NAME if a frame may name it; Refused otherwise."""
        try:
            return _BUILDABLE[module, name]
        except KeyError:
            raise Refused(Refusal.FOREIGN_CLASS, f"{module}.{name}") from None


def encode(message: Message) -> bytes:
    """MESSAGE as one frame."""
    return pickle.dumps(message, pickle.HIGHEST_PROTOCOL)


def decode(frame: bytes | memoryview, accepts: Container[type]) -> Message:
    """The message in FRAME, if its type is one of ACCEPTS; Refused otherwise."""
    try:
        message = _Unpickler(io.BytesIO(frame)).load()
    except Refused:
        raise
    except Exception as exc:  # whatever a garbled pickle raises (UnpicklingError, EOFError, ValueError, ...)
        raise Refused(Refusal.GARBLED, f"{type(exc).__name__}: {exc}") from None
    if type(message) not in accepts:
        raise Refused(Refusal.UNHANDLED, type(message).__qualname__)
    return message  # type: ignore[no-any-return]


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
    """One end: `send` queues a message, each one received goes to its handler, `on_closed` once at EOF.

    HANDLERS is the end's table: message type -> its handler. A frame of any other type is refused."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop, handlers: Handlers,
                 on_closed: Callable[[], None]) -> None:
        self.sock, self.loop = sock, loop
        self.handlers, self.on_closed = handlers, on_closed
        self.sent = self.received = 0
        self.refused: dict[Refusal, int] = {}  # frames refused, by reason (each reason logged once)
        self._queue: deque[bytes] = deque()
        self._writing = False
        self._closed = False
        self._buffer = bytearray(MAX_MESSAGE)  # one buffer, read into: no allocation per message
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._readable)

    def send(self, message: Message) -> None:
        """Send MESSAGE as soon as the socket takes it; order is kept."""
        if self._closed:
            return
        self._queue.append(encode(message))
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
                size = self.sock.recv_into(self._buffer, 0, socket.MSG_TRUNC)  # the frame's whole length
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                size = 0
            if not size:  # EOF (no message of ours is empty)
                self._eof()
                return
            self.received += 1
            try:
                message = self._decode(size)
            except Refused as refused:
                self._refuse(refused)
                continue
            self.handlers[type(message)](message)

    def _decode(self, size: int) -> Message:
        if size > len(self._buffer):
            raise Refused(Refusal.OVERSIZED, f"{size} bytes")
        return decode(memoryview(self._buffer)[:size], self.handlers)

    def _refuse(self, refused: Refused) -> None:
        seen = self.refused.get(refused.reason, 0)
        self.refused[refused.reason] = seen + 1
        if not seen:  # a sender that goes wrong goes wrong on every frame: once is enough to say so
            log.error("refused a frame from the other process (%s); further ones for this reason are only counted",
                      refused)

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
