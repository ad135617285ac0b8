"""The metrics and health endpoints over real sockets on 127.0.0.1: answers, keep-alive, and clients that stall,
flood or speak no HTTP."""

from __future__ import annotations

import asyncio
import http.client
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ironlb.api.constants import METRICS_TOKEN_HEADER
from ironlb.common import http as http_mod
from ironlb.common.http import HealthServer, Refusal
from ironlb.common.httpauth import Access

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


async def test_a_request_line_then_a_keep_alive_connection_at_stop_logs_no_traceback(
        server: HealthServer, caplog: pytest.LogCaptureFixture) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\n\r\n")
        await writer.drain()
        assert (await reader.readuntil(b"ok\n")).startswith(b"HTTP/1.1 200 OK")  # kept alive, idle
        await server.stop()
        async with asyncio.timeout(2):
            assert await reader.read() == b""
        await asyncio.sleep(0.05)  # asyncio would log the cancelled handler's traceback by now
    finally:
        writer.close()
        await writer.wait_closed()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("head", [
    b"GET /healthz HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello",
    b"GET /healthz HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nX-Ironlb-Authorization: Bearer a\r\nx-ironlb-authorization: Bearer b\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n",
])
async def test_a_repeated_content_length_or_a_malformed_header_is_refused(server: HealthServer, head: bytes) -> None:
    answer = await raw(server.port, head)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close" in answer
    assert server.metrics.refused[Refusal.BAD_REQUEST] == 1


class Gate:
    """An authorizer that lets a request through once `open` is set; ALLOWED for the token "good"."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.waiting = 0

    async def check(self, authorization: str | None) -> Access:
        self.waiting += 1
        try:
            await self.open.wait()
        finally:
            self.waiting -= 1
        return {"Bearer good": Access.ALLOWED, "Bearer known": Access.FORBIDDEN, None: Access.NO_TOKEN}.get(
            authorization, Access.UNAUTHENTICATED)


@pytest.fixture
async def capped() -> AsyncIterator[tuple[HealthServer, Gate]]:
    gate = Gate()
    srv = HealthServer(CollectorRegistry(), lambda: (True, "joined"), "127.0.0.1", 0, authorizer=gate,
                       max_connections=4, max_per_client=3)
    await srv.start()
    try:
        yield srv, gate
    finally:
        await srv.stop()


async def connect(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the server from address SOURCE (any of 127.0.0.0/8)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    await asyncio.sleep(0.02)  # accepted and admitted (or not) by the server
    return reader, writer


async def closed(reader: asyncio.StreamReader) -> bool:
    try:
        async with asyncio.timeout(1):
            return await reader.read() == b""
    except ConnectionResetError:
        return True


async def test_the_connection_cap_evicts_the_longest_idle_then_resets_newcomers(
        capped: tuple[HealthServer, Gate]) -> None:
    server, gate = capped
    # Three idle connections from 127.0.0.1 (its share), one from 127.0.0.2: the listener is full.
    conns = [await connect(server.port) for _ in range(3)] + [await connect(server.port, "127.0.0.2")]
    assert server.metrics.open == 4
    fourth_from_one = await connect(server.port)  # over 127.0.0.1's share: reset at once
    assert await closed(fourth_from_one[0]) and server.metrics.refused[Refusal.CLIENT_FULL] == 1
    # A newcomer from elsewhere displaces the longest idle connection, never a busy one.
    gate.open.clear()
    for _, writer in conns[1:]:
        writer.write(b"GET /metrics HTTP/1.1\r\nAuthorization: Bearer good\r\n\r\n")
    await asyncio.sleep(0.05)
    assert gate.waiting == 3
    newcomer = await connect(server.port, "127.0.0.3")
    assert await closed(conns[0][0]) and server.metrics.refused[Refusal.EVICTED] == 1
    # Full of connections being answered: the next one is reset and counted; none is held for it.
    newcomer[1].write(b"GET /metrics HTTP/1.1\r\nAuthorization: Bearer good\r\n\r\n")
    await asyncio.sleep(0.05)
    late = await connect(server.port, "127.0.0.4")
    assert await closed(late[0]) and server.metrics.refused[Refusal.FULL] == 1
    gate.open.set()
    for reader, _ in [*conns[1:], newcomer]:
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 OK")
    for _, writer in [*conns, fourth_from_one, newcomer, late]:
        writer.close()
    text = (await asyncio.to_thread(get_with, server.port, "/metrics", "good"))[2].decode()
    assert 'ironlb_http_refused_total{listener="metrics",reason="full"} 1.0' in text
    assert 'ironlb_http_refused_total{listener="metrics",reason="evicted"} 1.0' in text


def get_with(port: int, path: str, token: str | None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


async def test_metrics_need_a_token_the_authorizer_accepts(capped: tuple[HealthServer, Gate]) -> None:
    server, _ = capped
    none, bad, known, good = [await asyncio.to_thread(get_with, server.port, "/metrics", token)
                              for token in (None, "forged", "known", "good")]
    assert (none[0], none[1]["www-authenticate"], none[2]) == (401, "Bearer", b"no-token\n")
    assert (bad[0], bad[2]) == (401, b"unauthenticated\n") and bad[1]["connection"] == "close"
    assert (known[0], known[2]) == (403, b"forbidden\n")
    assert good[0] == 200 and b"ironlb_http_refused_total" in good[2]
    assert server.metrics.refused[Refusal.NO_TOKEN] == 1 and server.metrics.refused[Refusal.FORBIDDEN] == 1
    (healthz,) = await asyncio.to_thread(get, server.port, "/healthz")  # health needs none
    assert healthz[0] == 200


def get_headers(port: int, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics", headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


async def test_a_token_in_the_header_the_api_server_proxy_passes_on_is_checked_the_same_way(
        capped: tuple[HealthServer, Gate]) -> None:
    """The API server's proxy strips Authorization: the same token may come in X-Ironlb-Authorization, and the
    authorizer decides on it as on Authorization (never a way around the review)."""
    server, gate = capped
    seen: list[str | None] = []
    check = gate.check

    async def spy(authorization: str | None) -> Access:
        seen.append(authorization)
        return await check(authorization)

    gate.check = spy  # type: ignore[method-assign]
    answers = [await asyncio.to_thread(get_headers, server.port, h) for h in (
        {METRICS_TOKEN_HEADER: "Bearer good"}, {METRICS_TOKEN_HEADER: "Bearer forged"},
        {METRICS_TOKEN_HEADER: "Bearer known"}, {METRICS_TOKEN_HEADER: ""},
        {"Authorization": "Bearer known", METRICS_TOKEN_HEADER: "Bearer good"})]
    assert [status for status, _ in answers] == [200, 401, 403, 401, 403]
    # Every request was put to the authorizer; with both headers, Authorization is the one judged.
    assert seen == ["Bearer good", "Bearer forged", "Bearer known", None, "Bearer known"]
    assert server.metrics.refused[Refusal.UNAUTHENTICATED] == 1 and server.metrics.refused[Refusal.FORBIDDEN] == 2


class SlowCollector:
    """A collector that holds the loop for `hold` seconds per render, counting renders."""

    def __init__(self, hold: float) -> None:
        self.hold, self.renders = hold, 0

    def collect(self) -> list:
        self.renders += 1
        time.sleep(self.hold)  # a large page being rendered on the control loop
        return []


async def test_health_apart_never_waits_behind_a_render_and_scrapes_share_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    registry, slow = CollectorRegistry(), SlowCollector(0.6)
    registry.register(slow)  # type: ignore[arg-type]
    srv = HealthServer(registry, lambda: (True, "joined"), "127.0.0.1", 0, health=("127.0.0.1", 0))
    await srv.start()
    try:
        assert srv.health is not None
        health_port = srv.health.listener.port
        scrapes = [asyncio.to_thread(get, srv.port, "/metrics") for _ in range(3)]
        scraping = asyncio.gather(*scrapes)
        await asyncio.sleep(0.1)  # a render holds the loop now

        def timed_health() -> tuple[float, int, int]:
            started = time.monotonic()
            ((healthz, _, _),) = get(health_port, "/healthz")
            ((readyz, _, _),) = get(health_port, "/readyz")
            return time.monotonic() - started, healthz, readyz

        took, healthz, readyz = await asyncio.to_thread(timed_health)
        await scraping
        assert (healthz, readyz) == (200, 200) and took < 0.3
        assert slow.renders == 1  # three scrapes, one render
        (missing,) = await asyncio.to_thread(get, health_port, "/metrics")
        assert missing[0] == 404  # metrics are not on the health listener
        monkeypatch.setattr(http_mod, "STALL_S", 0.2)
        time.sleep(0.3)  # the control loop wedged: no beat for longer than STALL_S
        ((stalled, _, body),) = await asyncio.to_thread(get, health_port, "/healthz")
        assert stalled == 503 and b"silent" in body
    finally:
        await srv.stop()
