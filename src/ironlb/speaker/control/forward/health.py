"""Health checks of forwarding backends: HTTP GET against kube-proxy on each node, like a cloud LB.

For externalTrafficPolicy Local the Service's healthCheckNodePort (200 only with a local ready
endpoint), otherwise kube-proxy's /healthz. A probe counts as failing after `fall` failures in a
row and healthy again after `rise` successes; a probe not yet run counts as healthy, so a new VIP
forwards at once and the heartbeats (which see a dead node in well under a second) cover the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from ironlb.common.tasks import stop_all
from ironlb.speaker.control.forward.plan import Probe

log = logging.getLogger(__name__)


async def http_ok(address: str, port: int, path: str, timeout: float) -> bool:
    """Does GET http://address:port/path answer 200 within TIMEOUT seconds?"""
    host = f"[{address}]" if ":" in address else address
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(address, port)
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: ironlb-speaker\r\n\r\n".encode())
            await writer.drain()
            status = await reader.readline()
        return status.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError, IndexError):
        return False
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class HealthChecker:
    """Runs one probe task per wanted Probe; reports when the set of failing probes changes."""

    def __init__(self, on_change: Callable[[], None], interval: float = 1.0, timeout: float = 0.5,
                 fall: int = 2, rise: int = 2,
                 check: Callable[[str, int, str, float], Awaitable[bool]] = http_ok) -> None:
        self.on_change, self.interval, self.timeout = on_change, interval, timeout
        self.fall, self.rise, self.check = fall, rise, check
        self._tasks: dict[Probe, asyncio.Task[None]] = {}
        self._failing: set[Probe] = set()

    @property
    def failing(self) -> frozenset[Probe]:
        """Probes currently failing."""
        return frozenset(self._failing)

    def set_probes(self, probes: Iterable[Probe]) -> None:
        """Probe exactly these from now on."""
        wanted = set(probes)
        for probe in set(self._tasks) - wanted:
            self._tasks.pop(probe).cancel()
            self._failing.discard(probe)
        for probe in wanted - set(self._tasks):
            self._tasks[probe] = asyncio.get_running_loop().create_task(self._run(probe))

    async def _run(self, probe: Probe) -> None:
        streak = 0  # > 0: successes in a row, < 0: failures in a row
        while True:
            ok = await self.check(probe.address, probe.port, probe.path, self.timeout)
            streak = max(streak, 0) + 1 if ok else min(streak, 0) - 1
            if probe in self._failing and streak >= self.rise:
                self._failing.discard(probe)
                log.info("health check of %s (%s:%d%s) passes again", probe.node, probe.address, probe.port, probe.path)
                self.on_change()
            elif probe not in self._failing and -streak >= self.fall:
                self._failing.add(probe)
                log.warning("health check of %s (%s:%d%s) fails", probe.node, probe.address, probe.port, probe.path)
                self.on_change()
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        """Stop every probe."""
        await stop_all(self._tasks)
