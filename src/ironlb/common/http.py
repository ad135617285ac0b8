"""The /metrics, /healthz and /readyz endpoints: a small HTTP/1.1 server on asyncio streams.

Three GET endpoints need no web framework, whose server alone weighed heavily in the speaker's memory. Each
listener holds at most `max_connections` connections (`max_per_client` from one address); a newcomer to a
full listener displaces the connection that has waited longest without sending a whole request head, or, if
every one is busy, is reset at once; each is counted, and a flood costs a bounded amount of memory. A request
head is bounded in size and time, an answer's write in time, and a kept-alive connection is closed after IDLE_S.

Health can have a listener of its own (`health=(host, port)`), served from a thread with its own event
loop: /healthz and /readyz then never wait behind a metrics render or a flood on the metrics port. The
control loop publishes a beat (its time and its readiness) every BEAT_S; /healthz fails once the beat is
older than STALL_S, so a wedged control loop still fails its liveness probe.

/metrics is rendered on the control loop (the collectors read its state with nothing running beside
them), at most once per RENDER_EVERY_S: any number of scrapes cost the loop one render per interval.
With an `authorizer`, /metrics needs a bearer token it accepts (in Authorization, or in the header the API
server's proxy passes on: see ironlb.common.httpauth); with `tls`, the metrics listener speaks HTTPS (the
handshake starts once a connection is admitted, so it counts in the cap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from enum import Enum
from http import HTTPStatus
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ironlb.api.constants import METRICS_TOKEN_HEADER
from ironlb.common.httpauth import Access, Authorizer, credentials

log = logging.getLogger(__name__)
MAX_HEAD = 8192  # bytes of request line and headers
IDLE_S = 30.0  # a kept-alive connection with no new request is closed after this long
HEAD_S = 10.0  # a request head (a new connection's first one included) must arrive whole within this
WRITE_S = 10.0  # an answer must be taken by the client within this
MAX_CONNECTIONS = 64  # open connections per listener
MAX_PER_CLIENT = 16  # open connections per listener from one address
RENDER_EVERY_S = 1.0  # scrapes within this of a render share its page
BEAT_S = 1.0  # how often the control loop tells the health thread it runs, and whether it is ready
STALL_S = 20.0  # /healthz fails once the control loop has been silent this long
TEXT = "text/plain; charset=utf-8"
SINGLE_HEADERS = frozenset({"content-length", "transfer-encoding", "authorization", METRICS_TOKEN_HEADER.lower(),
                            "host"})
Response = tuple[int, str, bytes]  # status, content type, body
Handler = Callable[[str, dict[str, str]], Awaitable[Response]]  # (method, lower-cased headers) -> answer


class Refusal(Enum):
    """Why a connection or request was turned away (counted by listener and reason)."""

    FULL = "full"  # the listener holds max_connections already, each of them busy with a request
    EVICTED = "evicted"  # held the longest without a request, closed to make room for a new connection
    CLIENT_FULL = "client-full"  # this address holds max_per_client already
    BAD_REQUEST = "bad-request"  # not HTTP/1.x, or a repeated single-valued header
    NO_TOKEN = Access.NO_TOKEN.value
    UNAUTHENTICATED = Access.UNAUTHENTICATED.value
    FORBIDDEN = Access.FORBIDDEN.value
    UNAVAILABLE = Access.UNAVAILABLE.value


class BadRequest(Exception):
    """The request head breaks HTTP/1.1's rules: answered 400, then closed."""


class Listener:
    """One listening socket serving ROUTES, with a cap on connections."""

    def __init__(self, name: str, host: str, port: int, routes: dict[str, Handler],
                 max_connections: int = MAX_CONNECTIONS, max_per_client: int = MAX_PER_CLIENT,
                 tls: Callable[[], ssl.SSLContext] | None = None) -> None:
        self.name, self.host, self.port, self.routes, self.tls = name, host, port, routes, tls
        self.max_connections, self.max_per_client = max_connections, max_per_client
        self.refused: dict[Refusal, int] = dict.fromkeys(Refusal, 0)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._evicted: set[asyncio.Task[None]] = set()  # cancelled to make room, still closing their sockets
        self._per_client: dict[str, int] = {}
        # Connections waiting for a request head, oldest first: the first to go when the listener is full.
        self._waiting: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    @property
    def open(self) -> int:
        """Connections held now."""
        return len(self._connections)

    async def start(self) -> None:
        """Start listening (port 0: any free port, then `port` says which)."""
        self._server = await asyncio.start_server(self._connection, self.host, self.port, limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every open connection."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, *self._evicted, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    def count(self, refusal: Refusal) -> None:
        """One more refusal for REFUSAL."""
        self.refused[refusal] += 1

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if peer else ""
        refusal = self._admit(client)
        if refusal is not None:
            self.count(refusal)
            writer.transport.abort()  # a reset frees the socket at once: nothing held for the excess
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._per_client[client] = self._per_client.get(client, 0) + 1
        try:
            if self.tls is not None:  # after admission: a handshake in progress counts, and can be evicted
                self._waiting[task] = writer
                await writer.start_tls(self.tls(), ssl_handshake_timeout=HEAD_S)
            first = True
            while await self._one_request(reader, writer, HEAD_S if first else IDLE_S):
                first = False
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass  # the client went, stalled, sent too much or failed its handshake: nothing to answer
        except asyncio.CancelledError:
            pass  # stop() or an eviction closes the connection: ending quietly keeps a traceback out of the log
        finally:
            self._connections.discard(task)
            self._evicted.discard(task)
            self._waiting.pop(task, None)
            if (left := self._per_client.pop(client, 1) - 1) > 0:
                self._per_client[client] = left
            await _close(writer)

    def _admit(self, client: str) -> Refusal | None:
        """None to serve a new connection from CLIENT (evicting the longest-waiting one if full), else why not.

        Eviction keeps a flood of idle connections from locking out a probe or a scrape: what a newcomer
        displaces is one that has not sent a whole request head, never one being answered."""
        if self._per_client.get(client, 0) >= self.max_per_client:
            return Refusal.CLIENT_FULL
        if len(self._connections) < self.max_connections:
            return None
        if not self._waiting:
            return Refusal.FULL
        oldest = next(iter(self._waiting))
        del self._waiting[oldest]
        oldest.cancel()  # its read (or handshake) ends at once; its task closes the socket on its way out
        self._connections.discard(oldest)  # the room is the newcomer's now, before that task runs again
        self._evicted.add(oldest)
        self.count(Refusal.EVICTED)
        return None

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wait: float) -> bool:
        """Serve one request; False when the connection is to close."""
        task = asyncio.current_task()
        assert task is not None
        self._waiting[task] = writer
        try:
            async with asyncio.timeout(wait):
                first = await reader.readuntil(b"\n")
            method, path, headers, close = await _read_head(reader, first)
        except (TimeoutError, asyncio.IncompleteReadError):
            return False  # idle too long, closed between requests, or evicted
        except BadRequest:
            self.count(Refusal.BAD_REQUEST)
            await _send(writer, (HTTPStatus.BAD_REQUEST, TEXT, b"bad request\n"), "HEAD", close=True)
            return False
        finally:  # a whole head is in: this connection is busy, no longer the first to evict
            self._waiting.pop(task, None)
        response = await self._respond(method, path, headers)
        close = close or response[0] >= 400  # refused or failed: the client starts afresh
        await _send(writer, response, method, close)
        return not close

    async def _respond(self, method: str, path: str, headers: dict[str, str]) -> Response:
        route = self.routes.get(path.split("?", 1)[0])
        if route is None:
            return HTTPStatus.NOT_FOUND, TEXT, b"not found\n"
        if method not in ("GET", "HEAD"):
            return HTTPStatus.METHOD_NOT_ALLOWED, TEXT, b"GET only\n"
        return await route(method, headers)


async def _read_head(reader: asyncio.StreamReader, first: bytes) -> tuple[str, str, dict[str, str], bool]:
    """(method, path, headers, close after answering) of a request whose first line is FIRST."""
    lines, size = [first.decode("latin-1").rstrip("\r\n")], len(first)
    async with asyncio.timeout(HEAD_S):
        while line := (await reader.readuntil(b"\n")).decode("latin-1").rstrip("\r\n"):
            size += len(line) + 2
            if size > MAX_HEAD:
                raise ValueError("request head too large")
            lines.append(line)
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("not an HTTP/1.x request line")
    method, path, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        # Two Content-Length (or Host, Authorization...) headers: which one a proxy in front read is unknown.
        if not colon or not name or (name in SINGLE_HEADERS and name in headers):
            raise BadRequest(f"malformed or repeated header {name!r}")
        headers[name] = value.strip()
    length = headers.get("content-length", "0")
    if not length.isdigit():
        raise BadRequest("Content-Length is not a number")
    # A request body is never read: one announced makes the connection unusable for another request.
    close = (version == "HTTP/1.0" or headers.get("connection", "").lower() == "close"
             or int(length) != 0 or "transfer-encoding" in headers)
    return method, path, headers, close


class HealthServer:
    """Serves metrics and health; `ready` is asked on each /readyz (or each beat, with a health listener)."""

    def __init__(self, registry: CollectorRegistry, ready: Callable[[], tuple[bool, str]],
                 host: str = "0.0.0.0", port: int = 7472, *, health: tuple[str, int] | None = None,
                 authorizer: Authorizer | None = None, max_connections: int = MAX_CONNECTIONS,
                 max_per_client: int = MAX_PER_CLIENT, tls: Callable[[], ssl.SSLContext] | None = None) -> None:
        self.registry, self.ready, self.authorizer = registry, ready, authorizer
        routes: dict[str, Handler] = {"/metrics": self._metrics}
        if health is None:  # one listener for all three (tests and benchmarks on a loopback)
            routes.update({"/healthz": self._healthz_here, "/readyz": self._readyz_here})
        self.metrics = Listener("metrics", host, port, routes, max_connections, max_per_client, tls)
        self.health = None if health is None else HealthThread(
            Listener("health", health[0], health[1], {"/healthz": self._healthz_beat, "/readyz": self._readyz_beat},
                     max_connections, max_per_client))
        self._page: tuple[float, bytes] | None = None
        self._beat: tuple[float, tuple[bool, str]] = (time.monotonic(), (False, "starting"))
        self._beating: asyncio.Task[None] | None = None
        self._collector = _ServerCollector(self)

    @property
    def host(self) -> str:
        """The metrics listener's address."""
        return self.metrics.host

    @property
    def port(self) -> int:
        """The metrics listener's port (the one chosen, once started on port 0)."""
        return self.metrics.port

    @property
    def listeners(self) -> list[Listener]:
        """Every listener this server runs."""
        return [self.metrics] + ([self.health.listener] if self.health else [])

    async def start(self) -> None:
        """Start listening."""
        self.beat()
        if self.health is not None:
            await self.health.start()
            self._beating = asyncio.create_task(self._beat_every(BEAT_S))
        await self.metrics.start()
        self.registry.register(self._collector)  # type: ignore[arg-type]

    async def stop(self) -> None:
        """Stop listening and close every open connection."""
        with contextlib.suppress(KeyError):
            self.registry.unregister(self._collector)  # type: ignore[arg-type]
        await self.metrics.stop()
        if self._beating is not None:
            self._beating.cancel()
            await asyncio.gather(self._beating, return_exceptions=True)
        if self.health is not None:
            await self.health.stop()

    def beat(self) -> None:
        """Tell the health listener the control loop runs, and whether it is ready."""
        try:
            ready = self.ready()
        except Exception:  # a failing check is "not ready", said on /readyz
            log.exception("the readiness check failed")
            ready = (False, "readiness check failed")
        self._beat = (time.monotonic(), ready)

    async def _beat_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.beat()

    def page(self) -> bytes:
        """The metrics page, rendered again once RENDER_EVERY_S has passed since the last render."""
        if self._page is None or time.monotonic() - self._page[0] >= RENDER_EVERY_S:
            body = generate_latest(self.registry)
            self._page = (time.monotonic(), body)
        return self._page[1]

    async def _metrics(self, _: str, headers: dict[str, str]) -> Response:
        if self.authorizer is not None:
            access = await self.authorizer.check(credentials(headers))
            if access is not Access.ALLOWED:
                self.metrics.count(Refusal(access.value))
                return access.status, TEXT, f"{access.value}\n".encode()
        return HTTPStatus.OK, CONTENT_TYPE_LATEST, self.page()

    async def _healthz_here(self, *_: Any) -> Response:
        return HTTPStatus.OK, TEXT, b"ok\n"

    async def _readyz_here(self, *_: Any) -> Response:
        return _readiness(self.ready())

    async def _healthz_beat(self, *_: Any) -> Response:
        silent = time.monotonic() - self._beat[0]
        if silent > STALL_S:
            return HTTPStatus.SERVICE_UNAVAILABLE, TEXT, f"control loop silent for {silent:.0f} s\n".encode()
        return HTTPStatus.OK, TEXT, b"ok\n"

    async def _readyz_beat(self, *_: Any) -> Response:
        return _readiness(self._beat[1])


class HealthThread:
    """A listener served by an event loop of its own, in a thread: nothing on the control loop delays it."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        """Start the thread and the listener on it."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="health", daemon=True)
        self._thread.start()
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.listener.start(), self._loop))

    async def stop(self) -> None:
        """Stop the listener, then the thread."""
        if self._loop is None or self._thread is None:
            return
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.listener.stop(), self._loop))
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._loop.close()
        self._loop = self._thread = None


class _ServerCollector:
    """ironlb_http_*: refusals by listener and reason, and open connections."""

    def __init__(self, server: HealthServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Any]:
        """Yield the metric families."""
        refused = CounterMetricFamily("ironlb_http_refused", "Connections reset at once (full) and requests "
                                      "refused, by listener and reason", labels=["listener", "reason"])
        held = GaugeMetricFamily("ironlb_http_open_connections", "Connections held open", labels=["listener"])
        for listener in self.server.listeners:
            for reason, n in listener.refused.items():
                refused.add_metric([listener.name, reason.value], n)
            held.add_metric([listener.name], listener.open)
        yield from (refused, held)


def _readiness(ready: tuple[bool, str]) -> Response:
    ok, why = ready
    return (HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE), TEXT, f"{why}\n".encode()


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close after what was written is sent; a client that takes none of it within WRITE_S gets a reset."""
    writer.close()
    try:
        async with asyncio.timeout(WRITE_S):
            await writer.wait_closed()
    except (Exception, asyncio.CancelledError):  # gone, stalled, or stopping: drop it now
        writer.transport.abort()


async def _send(writer: asyncio.StreamWriter, response: Response, method: str, close: bool) -> None:
    status, content_type, body = response
    challenge = "WWW-Authenticate: Bearer\r\n" if status == HTTPStatus.UNAUTHORIZED else ""
    head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {content_type}\r\n{challenge}"
            f"Content-Length: {len(body)}\r\n{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n")
    writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
    async with asyncio.timeout(WRITE_S):
        await writer.drain()
