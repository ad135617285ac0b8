"""The lifetimes of the speaker's components in `app.Speaker.run`: each context starts its component on
entry and stops it on exit (the exit stack leaves them in reverse order)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any

from ironlb.common.informer import Informer
from ironlb.speaker.control.fastproc import FastProcess
from ironlb.speaker.control.fence_loop import Fencer
from ironlb.speaker.control.fencing import ApiLossPolicy, Fence
from ironlb.speaker.control.forward.health import HealthChecker
from ironlb.speaker.control.forward.programmer import NftablesProgrammer
from ironlb.speaker.control.holds import HoldWatch
from ironlb.speaker.control.presence import Presence
from ironlb.speaker.control.status import StatusReporter
from ironlb.speaker.control.steer.steerer import Steerer


@contextlib.asynccontextmanager
async def events_written(status: StatusReporter) -> AsyncIterator[None]:
    """On exit, the Events still queued are written (bounded) before the speaker exits."""
    try:
        yield
    finally:
        await asyncio.to_thread(status.events.close)


@contextlib.asynccontextmanager
async def holds_watched(fast: FastProcess | None, peers: Callable[[], Mapping[str, str]],
                        steerer: Steerer) -> AsyncIterator[None]:
    """The peers the fast plane holds for are probed; the ones that do not answer are released."""
    assert fast is not None
    watch = HoldWatch(fast, peers, steerer.settings.probe_port, steerer.settings.probe_timeout)
    fast.on_held = watch.follow
    try:
        yield
    finally:
        await watch.close()


@contextlib.asynccontextmanager
async def _kept_running(run: Coroutine[Any, Any, None] | None,
                        close: Callable[[], Awaitable[Any]]) -> AsyncIterator[None]:
    """RUN (when given) as a task while inside; on exit it is cancelled and CLOSE awaited."""
    task = asyncio.get_running_loop().create_task(run if run is not None else asyncio.sleep(0))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, close(), return_exceptions=True)


def nftables_programmed(nftables: NftablesProgrammer, enabled: bool,
                        health: HealthChecker) -> contextlib.AbstractAsyncContextManager[None]:
    """NodePort forwarding's nftables table is kept in line (when ENABLED), and its health checks stop on exit."""
    # The programmer's first pass also clears a table a killed speaker left behind.
    return _kept_running(nftables.run() if enabled else None, health.close)


def steering(steerer: Steerer) -> contextlib.AbstractAsyncContextManager[None]:
    """The steerer programs its table (when enabled) and is closed on exit."""
    # Its first pass also clears a table a killed speaker left behind.
    return _kept_running(steerer.run() if steerer.settings.enabled else None, steerer.close)


@contextlib.asynccontextmanager
async def watching(informers: list[Informer]) -> AsyncIterator[None]:
    """The INFORMERS are started on entry and stopped on exit."""
    for informer in informers:
        informer.start()
    try:
        yield
    finally:
        for informer in informers:
            informer.stop()


@contextlib.asynccontextmanager
async def fencing(fast: FastProcess | None, presence: Presence | None, carrier: Callable[[], bool],
                  rejoin: Callable[[], Awaitable[None]], me: str,
                  on_api_loss: ApiLossPolicy) -> AsyncIterator[Fencer | None]:
    """Self-fencing (fencing.py): no carrier on the announce links, or cut off from every peer; the fencer
    is given back (None without PRESENCE: no self-fencing on silence)."""
    if presence is None or fast is None:
        yield None
        return
    fencer = Fencer(fast, presence, carrier, rejoin, fence=Fence(me=me, on_api_loss=on_api_loss))
    tasks = asyncio.gather(presence.run(), fencer.run())
    try:
        yield fencer
    finally:
        tasks.cancel()
        await asyncio.gather(tasks, return_exceptions=True)
