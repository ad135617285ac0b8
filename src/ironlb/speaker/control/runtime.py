"""The speaker's runtime around its components: the collector from start-up on, CPU priority, and how
the long-running parts of `app.Speaker.run` are entered and left."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Coroutine
from typing import Any, Protocol

from ironlb.common import heap
from ironlb.speaker.control.fastproc import FastProcess

log = logging.getLogger(__name__)
# Fewer, cheaper collections: everything alive after start-up is frozen out of the collector's scans.
GC_THRESHOLDS = (20_000, 50, 100)
CONTROL_NICENESS = 5  # the control plane's threads: a third of the fast plane's CPU weight (335 against 1024)


class Server(Protocol):
    """The health/metrics server (started and stopped with the speaker)."""

    async def start(self) -> None:
        """Start serving."""

    async def stop(self) -> None:
        """Stop serving."""


def collect_less_often() -> None:
    """From the start: the collector's higher thresholds, before the informers list every object (with the
    default ones, each full collection scans the whole heap the list has grown so far, again and again)."""
    gc.set_threshold(*GC_THRESHOLDS)


def settle_runtime() -> None:
    """After start-up: freeze what exists out of the collector's scans, collect less often, return free pages."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    heap.trim()


def yield_cpu_to_fast_plane() -> None:
    """Where the two planes compete for a CPU, the fast plane wins: the control plane's threads run at
    a lower priority (raising one's own niceness needs no privilege; the fast plane's process keeps its own)."""
    now = os.nice(0)
    if now < CONTROL_NICENESS:
        try:
            os.nice(CONTROL_NICENESS - now)  # this thread, and the threads it starts from now on
        except OSError:
            log.debug("cannot lower the control plane's CPU priority")


async def unless_exited(work: Coroutine[Any, Any, None], fast: FastProcess | None) -> None:
    """Run WORK; if the fast plane's process ends meanwhile, stop it and raise that instead."""
    if fast is None or fast.exited is None:
        await work
        return
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait({task, fast.exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:  # cancelled from outside (SIGTERM), or the process ended: WORK stops either way
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled() and fast.exited.done():
        fast.exited.result()  # raises what ended the process
    task.result()


@contextlib.asynccontextmanager
async def serving(server: Server) -> AsyncIterator[None]:
    await server.start()
    try:
        yield
    finally:
        await server.stop()
