"""Health checks of NodePort backends against a real local HTTP listener."""

from __future__ import annotations

import asyncio

from ironlb.speaker.control.forward.health import HealthChecker, http_ok
from ironlb.speaker.control.forward.plan import Probe


async def serve(status: dict[str, int]) -> asyncio.Server:
    """An HTTP server on 127.0.0.1 answering with status['code']."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(f"HTTP/1.1 {status['code']} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_http_ok_reads_the_status_line() -> None:
    status = {"code": 200}
    server = await serve(status)
    port = server.sockets[0].getsockname()[1]
    assert await http_ok("127.0.0.1", port, "/healthz", 1.0)
    status["code"] = 503
    assert not await http_ok("127.0.0.1", port, "/healthz", 1.0)
    server.close()
    await server.wait_closed()
    assert not await http_ok("127.0.0.1", port, "/healthz", 1.0)  # refused


async def test_fall_and_rise_thresholds_and_change_callbacks() -> None:
    status = {"code": 200}
    server = await serve(status)
    port = server.sockets[0].getsockname()[1]
    changes: list[frozenset[Probe]] = []
    checker = HealthChecker(lambda: changes.append(checker.failing), interval=0.02, timeout=0.5, fall=2, rise=2)
    probe = Probe("n2", "127.0.0.1", port, "/healthz")
    checker.set_probes([probe])
    await asyncio.sleep(0.15)
    assert checker.failing == frozenset() and changes == []
    status["code"] = 500
    await asyncio.sleep(0.2)
    assert checker.failing == {probe} and changes == [frozenset({probe})]
    status["code"] = 200
    await asyncio.sleep(0.2)
    assert checker.failing == frozenset() and changes[-1] == frozenset()
    checker.set_probes([])
    assert not checker._tasks
    await checker.close()
    server.close()


async def test_a_dropped_probe_is_forgotten_while_failing() -> None:
    async def never(*_: object) -> bool:
        return False

    checker = HealthChecker(lambda: None, interval=0.01, fall=1, check=never)
    probe = Probe("n1", "192.0.2.11", 10256, "/healthz")
    checker.set_probes([probe])
    await asyncio.sleep(0.05)
    assert checker.failing == {probe}
    checker.set_probes([])
    assert checker.failing == frozenset()
    await checker.close()
