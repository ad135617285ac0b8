"""The metrics and health endpoints over real sockets on 127.0.0.1: answers, keep-alive, and clients that stall,
flood or speak no HTTP."""

from __future__ import annotations

import asyncio
import http.client
import socket
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ironlb.common import http as http_mod
from ironlb.common.http import HealthServer

READY = {"ok": True, "why": "joined"}


@pytest.fixture
async def server() -> AsyncIterator[HealthServer]:
    registry = CollectorRegistry()
    Counter("ironlb_test_things", "Things", registry=registry).inc(3)
    srv = HealthServer(registry, lambda: (READY["ok"], READY["why"]), "127.0.0.1", 0)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def get(port: int, *paths: str, method: str = "GET") -> list[tuple[int, dict[str, str], bytes]]:
    """Each path in turn over one kept-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    out = []
    try:
        for path in paths:
            conn.request(method, path)
            resp = conn.getresponse()
            out.append((resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()))
    finally:
        conn.close()
    return out


async def test_metrics_health_and_readiness(server: HealthServer) -> None:
    (metrics, healthz, ready) = await asyncio.to_thread(get, server.port, "/metrics", "/healthz", "/readyz?verbose")
    assert metrics[0] == 200 and b"ironlb_test_things_total 3.0" in metrics[2]
    assert metrics[1]["content-type"] == CONTENT_TYPE_LATEST
    assert healthz[:1] == (200,) and healthz[2] == b"ok\n"
    assert ready[0] == 200 and ready[2] == b"joined\n" and ready[1]["connection"] == "keep-alive"
    READY.update(ok=False, why="waiting for kube-proxy")
    try:
        ((status, _, body),) = await asyncio.to_thread(get, server.port, "/readyz")
    finally:
        READY.update(ok=True, why="joined")
    assert (status, body) == (503, b"waiting for kube-proxy\n")


async def test_unknown_paths_other_methods_and_head(server: HealthServer) -> None:
    (missing,) = await asyncio.to_thread(get, server.port, "/admin")
    (posted,) = await asyncio.to_thread(get, server.port, "/metrics", method="DELETE")
    (head,) = await asyncio.to_thread(get, server.port, "/healthz", method="HEAD")
    assert missing[0] == 404 and posted[0] == 405
    assert head[0] == 200 and head[2] == b"" and head[1]["content-length"] == "3"


async def raw(port: int, data: bytes, wait: float = 2.0) -> bytes:
    """Send DATA as is; everything the server says until it closes (or WAIT passes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(wait):
            return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_not_http_gets_400_and_a_closed_connection(server: HealthServer) -> None:
    answer = await raw(server.port, b"HELLO THERE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close" in answer


async def test_a_request_with_a_body_is_answered_then_closed(server: HealthServer) -> None:
    answer = await raw(server.port, b"GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"ok\n")  # read to EOF: closed


async def test_a_flood_of_headers_is_cut_off_and_others_are_still_served(server: HealthServer) -> None:
    flood = b"GET /metrics HTTP/1.1\r\n" + b"X-Filler: " + b"a" * 100 + b"\r\n" * 1 + (b"X: y\r\n" * 2000) + b"\r\n"
    assert await raw(server.port, flood) == b""  # closed, nothing answered
    (ok,) = await asyncio.to_thread(get, server.port, "/healthz")
    assert ok[0] == 200


async def test_a_stalled_head_and_an_idle_connection_are_closed(server: HealthServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_mod, "HEAD_S", 0.2)
    monkeypatch.setattr(http_mod, "IDLE_S", 0.2)
    assert await raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n") == b""  # never finishes its head
    assert await raw(server.port, b"") == b""  # says nothing at all
    answer = await raw(server.port, b"GET /healthz HTTP/1.1\r\n\r\n")  # answered, then idle: closed
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"ok\n")


async def test_stop_closes_open_connections(server: HealthServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        await asyncio.sleep(0.05)
        await server.stop()
        async with asyncio.timeout(2):
            assert await reader.read() == b""
    finally:
        writer.close()
        await writer.wait_closed()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
