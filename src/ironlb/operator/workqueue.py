"""The Reconciler's work queue: keys to reconcile (a Service's, "pool:NAME", "advertisement:NAME"), deduplicated
while queued, the restore's rechecks behind everything else, and the workers that take them one key at a time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ironlb.operator import metrics

if TYPE_CHECKING:
    from ironlb.operator.status import ObjectStatus

log = logging.getLogger("ironlb.operator.reconciler")  # the reconciler's own logger, as before the split
RETRY_S = 0.25  # a write refused as stale (409) or held back by another Service's clear


class WorkQueue:
    """The queue half of the Reconciler (a mixin: its workers call the reconciler's reconciles)."""

    state: Any
    status: ObjectStatus

    def _init_queue(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        # The restore's once-over of every Service that kept its IPs: run when nothing else waits, so a
        # new Service or an edit is not queued behind tens of thousands of checks that find nothing.
        self._rechecks: deque[str] = deque()
        self._rechecking: set[str] = set()
        self._inflight: set[str] = set()

    async def _reconcile_service(self, key: str) -> None:
        raise NotImplementedError

    def enqueue(self, key: str) -> None:
        """Ask for KEY to be reconciled (deduplicated while queued)."""
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def _recheck(self, key: str) -> None:
        """Ask for KEY to be reconciled once nothing else is queued."""
        if key not in self._queued and key not in self._rechecking:
            self._rechecking.add(key)
            self._rechecks.append(key)

    async def _next_key(self) -> str:
        """The next key to reconcile: anything queued first, then the restore's rechecks. (Rechecks are
        made before the workers start, so a worker waiting on the queue leaves none behind.)"""
        while self._queue.empty() and self._rechecks:
            key = self._rechecks.popleft()
            if key in self._rechecking:  # else reconciled meanwhile, from the queue
                self._rechecking.discard(key)
                return key
        key = await self._queue.get()
        self._queued.discard(key)
        self._rechecking.discard(key)  # this reconcile is its recheck too
        return key

    def _retry_later(self, key: str) -> None:
        asyncio.get_running_loop().call_later(RETRY_S, self.enqueue, key)

    def _pool_dirty(self, name: str) -> None:
        self.enqueue(f"pool:{name}")

    def _objects_dirty(self) -> None:
        # A pool's status depends on every advertisement and an advertisement's on every pool name;
        # both are few, and an unchanged status is not written again.
        for name in self.state.pools:
            self._pool_dirty(name)
        for name in self.state.advertisements:
            self.enqueue(f"advertisement:{name}")

    async def _worker(self) -> None:
        while True:
            key = await self._next_key()
            if key in self._inflight:  # same key already being written: run again after it
                await asyncio.sleep(0.01)
                self.enqueue(key)
                continue
            self._inflight.add(key)
            started = time.perf_counter()
            try:
                if key.startswith("pool:"):
                    await self.status.reconcile_pool(key[5:])
                elif key.startswith("advertisement:"):
                    await self.status.reconcile_advertisement(key[14:])
                else:
                    await self._reconcile_service(key)
                    metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile of %s failed; retrying", key)
                asyncio.get_running_loop().call_later(1.0, self.enqueue, key)
            finally:
                self._inflight.discard(key)
