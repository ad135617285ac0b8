"""The /metrics, /healthz and /readyz endpoints: a small HTTP/1.1 server on asyncio streams.

Three GET endpoints need no web framework (aiohttp's server alone is ~14 MB of the speaker's memory). Each
connection serves requests until the client closes it or is idle for IDLE_S; a request head is bounded in size
and time, so a slow or hostile client holds one small buffer for a bounded while. Handlers run on the loop, so
the collectors read the speaker's state with nothing else running beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from http import HTTPStatus

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)
MAX_HEAD = 8192  # bytes of request line and headers
IDLE_S = 30.0  # a kept-alive connection with no new request is closed after this long
HEAD_S = 10.0  # a request head must arrive whole within this
TEXT = "text/plain; charset=utf-8"
Response = tuple[int, str, bytes]  # status, content type, body


class HealthServer:
    """Serves metrics and health; `ready` is asked on each /readyz."""

    def __init__(self, registry: CollectorRegistry, ready: Callable[[], tuple[bool, str]],
                 host: str = "0.0.0.0", port: int = 7472) -> None:
        self.registry, self.ready, self.host, self.port = registry, ready, host, port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._routes: dict[str, Callable[[], Response]] = {"/metrics": self._metrics, "/healthz": _healthz,
                                                           "/readyz": self._readyz}

    def respond(self, method: str, path: str) -> Response:
        """The answer to METHOD PATH (the query string is ignored)."""
        route = self._routes.get(path.split("?", 1)[0])
        if route is None:
            return HTTPStatus.NOT_FOUND, TEXT, b"not found\n"
        if method not in ("GET", "HEAD"):
            return HTTPStatus.METHOD_NOT_ALLOWED, TEXT, b"GET only\n"
        return route()

    def _metrics(self) -> Response:
        return HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(self.registry)

    def _readyz(self) -> Response:
        ok, why = self.ready()
        return (HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE), TEXT, f"{why}\n".encode()

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
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass  # the client went, stalled or sent too much: nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is to close."""
        try:
            async with asyncio.timeout(IDLE_S):
                first = await reader.readuntil(b"\n")
        except (TimeoutError, asyncio.IncompleteReadError):
            return False  # idle too long, or closed between requests
        lines, size = [first.decode("latin-1").rstrip("\r\n")], len(first)
        async with asyncio.timeout(HEAD_S):
            while line := (await reader.readuntil(b"\n")).decode("latin-1").rstrip("\r\n"):
                size += len(line) + 2
                if size > MAX_HEAD:
                    raise ValueError("request head too large")
                lines.append(line)
        parts = lines[0].split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await _send(writer, (HTTPStatus.BAD_REQUEST, TEXT, b"bad request\n"), "HEAD", close=True)
            return False
        method, path, version = parts
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        # A request body is never read: one announced makes the connection unusable for another request.
        close = (version == "HTTP/1.0" or headers.get("connection", "").lower() == "close"
                 or headers.get("content-length", "0") != "0" or "transfer-encoding" in headers)
        await _send(writer, self.respond(method, path), method, close)
        return not close


def _healthz() -> Response:
    return HTTPStatus.OK, TEXT, b"ok\n"


async def _send(writer: asyncio.StreamWriter, response: Response, method: str, close: bool) -> None:
    status, content_type, body = response
    head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n")
    writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
    await writer.drain()
