"""The operator's heart: keeps the allocator in step with Services and pools, and writes results."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ironlb.api.constants import FORWARDING_NODE_PORT
from ironlb.core.allocator import Allocation, Allocator
from ironlb.operator import metrics
from ironlb.operator.pools import PoolView, pool_status
from ironlb.operator.services import Handling, ServiceView, deleted_view, view_of
from ironlb.operator.writer import Writer, pool_ref, service_ref

log = logging.getLogger(__name__)


@dataclass
class State:
    """Everything the operator knows, kept in step by the watch handlers."""

    lb_class: str | None
    services: dict[str, ServiceView] = field(default_factory=dict)
    pools: dict[str, PoolView] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    last_failure: dict[str, str] = field(default_factory=dict)
    pool_status_written: dict[str, dict[str, Any]] = field(default_factory=dict)


class Reconciler:
    """Serialises decisions (allocator calls are synchronous) and runs API writes concurrently."""

    def __init__(self, writer: Writer, lb_class: str | None, workers: int = 16) -> None:
        self.allocator = Allocator()
        self.state = State(lb_class=lb_class)
        self.writer = writer
        self.workers = workers
        self.restored = asyncio.Event()
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._inflight: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # ---- start-up ----------------------------------------------------------------------------

    def restore(self, services: Iterable[Mapping[str, Any]], pools: Iterable[Mapping[str, Any]],
                namespaces: Mapping[str, Mapping[str, str]]) -> int:
        """Register every existing assignment before any new allocation; return how many were kept."""
        self.state.namespace_labels = {k: dict(v) for k, v in namespaces.items()}
        for body in pools:
            view = PoolView.from_body(body)
            self.state.pools[view.name] = view
        self.allocator.set_pools(self._valid_pools())
        kept = 0
        for body in services:
            view = self._view(body)
            self.state.services[view.key] = view
            restorable = view.handling is Handling.HANDLED and view.current_ips and view.request
            if restorable and self.allocator.restore(view.request, list(view.current_ips), view.current_pool).ok:
                kept += 1
                if view.current_pool:
                    continue  # consistent as found: nothing to do until it changes
            if view.handling is Handling.HANDLED or view.current_pool:
                self.enqueue(view.key)  # pending, conflicting, or ours to clean up
        for name in self.state.pools:
            self._pool_dirty(name)
        self.restored.set()
        log.info("restored %d assignments from %d services, %d pools", kept, len(self.state.services),
                 len(self.state.pools))
        return kept

    def start(self) -> None:
        """Start the worker tasks."""
        self._tasks = [asyncio.create_task(self._worker(), name=f"reconcile-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        """Stop the workers."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- inputs from watch handlers ----------------------------------------------------------

    def _view(self, body: Mapping[str, Any]) -> ServiceView:
        ns = body.get("metadata", {}).get("namespace", "default")
        return view_of(body, self.state.lb_class, self.state.namespace_labels.get(ns))

    def service_event(self, body: Mapping[str, Any], deleted: bool) -> None:
        """A Service was added, changed or deleted."""
        meta = body["metadata"]
        view = deleted_view(meta.get("namespace", "default"), meta["name"]) if deleted else self._view(body)
        self.state.services[view.key] = view
        if self.restored.is_set():  # before that, restore() decides what needs work
            self.enqueue(view.key)

    def pool_event(self, body: Mapping[str, Any], deleted: bool) -> None:
        """An IPAddressPool was added, changed or deleted: reconfigure, re-allocate what lost cover."""
        name = body["metadata"]["name"]
        if deleted:
            self.state.pools.pop(name, None)
            self.state.pool_status_written.pop(name, None)
        else:
            new = PoolView.from_body(body)
            old = self.state.pools.get(name)
            self.state.pools[name] = new
            if old and old.same_config(new):
                self._pool_dirty(name)
                return
            if old and old.forwarding != new.forwarding:  # ipMode of every Service in it changes
                for key, view in self.state.services.items():
                    if view.current_pool == name:
                        self.enqueue(key)
        uncovered = self.allocator.set_pools(self._valid_pools())
        for key in uncovered:
            self.enqueue(key)
        self._retry_pending()
        for pool_name in self.state.pools:
            self._pool_dirty(pool_name)

    def namespace_event(self, name: str, labels: Mapping[str, str] | None) -> None:
        """A Namespace's labels changed: pool selection of its Services may change."""
        if labels is None:
            self.state.namespace_labels.pop(name, None)
            return
        if self.state.namespace_labels.get(name) == dict(labels):
            return
        self.state.namespace_labels[name] = dict(labels)
        for key, view in list(self.state.services.items()):
            if view.namespace == name and view.handling is Handling.HANDLED:
                self.state.services[key] = view  # re-read on reconcile via request refresh
                self.enqueue(key)

    def _ip_mode(self, pool: str | None) -> str:
        """Proxy for NodePort-forwarding pools (kube-proxy then leaves the VIP to the speaker), else VIP."""
        view = self.state.pools.get(pool or "")
        return "Proxy" if view is not None and view.forwarding == FORWARDING_NODE_PORT else "VIP"

    def _valid_pools(self) -> list[Any]:
        return [v.pool for v in self.state.pools.values() if v.pool is not None]

    def _retry_pending(self) -> None:
        for key in list(self.state.pending):
            self.enqueue(key)

    # ---- the work queue ----------------------------------------------------------------------

    def enqueue(self, key: str) -> None:
        """Ask for KEY to be reconciled (deduplicated while queued)."""
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def _pool_dirty(self, name: str) -> None:
        self.enqueue(f"pool:{name}")

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            if key in self._inflight:  # same key already being written: run again after it
                await asyncio.sleep(0.01)
                self.enqueue(key)
                continue
            self._inflight.add(key)
            started = time.perf_counter()
            try:
                if key.startswith("pool:"):
                    await self._reconcile_pool(key[5:])
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

    # ---- Services ----------------------------------------------------------------------------

    async def _reconcile_service(self, key: str) -> None:
        view = self.state.services.get(key)
        if view is None:
            return
        if view.handling is not Handling.HANDLED:
            await self._release(view)
            return
        if view.request_error:
            await self._failed(view, "InvalidRequest", view.request_error)
            return
        # Namespace labels may have changed since the view was made: refresh the request's copy.
        view = self._refresh(view)
        allocation = self.allocator.assign(view.request)
        if not allocation.ok:
            await self._failed(view, allocation.reason.name, allocation.message)
            return
        await self._granted(view, allocation)

    def _refresh(self, view: ServiceView) -> ServiceView:
        labels = self.state.namespace_labels.get(view.namespace) or {}
        if view.request is not None and view.request.namespace_labels != labels:
            view.request.namespace_labels.clear()
            view.request.namespace_labels.update(labels)
        return view

    async def _granted(self, view: ServiceView, allocation: Allocation) -> None:
        self.state.pending.discard(view.key)
        self.state.last_failure.pop(view.key, None)
        metrics.PENDING.set(len(self.state.pending))
        mode = self._ip_mode(allocation.pool)
        changed_ips = tuple(allocation.ips) != view.current_ips
        stale_ingress = changed_ips or view.current_modes != tuple(mode for _ in allocation.ips)
        if view.current_pool != allocation.pool and not await self.writer.set_pool_annotation(
                view.namespace, view.name, allocation.pool):
            return
        if stale_ingress and not await self.writer.set_service_ingress(
                view.namespace, view.name, [{"ip": ip, "ipMode": mode} for ip in allocation.ips]):
            return
        if changed_ips:
            metrics.ALLOCATIONS.labels(allocation.pool).inc()
            ref = service_ref(view.namespace, view.name, view.uid)
            await self.writer.event(ref, "IPAllocated",
                                    f"Assigned IP {', '.join(allocation.ips)} from pool {allocation.pool}")
            for note in view.deprecations:
                await self.writer.event(ref, "DeprecatedConfiguration", note, warning=True)
            self._pool_dirty(allocation.pool)
            if view.current_pool and view.current_pool != allocation.pool:
                self._pool_dirty(view.current_pool)

    async def _failed(self, view: ServiceView, reason: str, message: str) -> None:
        self.state.pending.add(view.key)
        metrics.PENDING.set(len(self.state.pending))
        text = f"Failed to allocate IP for {view.key}: {message}"
        if self.state.last_failure.get(view.key) == text:
            return  # said already; a retry with the same outcome is not news
        self.state.last_failure[view.key] = text
        metrics.ALLOCATION_FAILURES.labels(reason).inc()
        await self.writer.event(service_ref(view.namespace, view.name, view.uid), "AllocationFailed", text,
                                warning=True)

    async def _release(self, view: ServiceView) -> None:
        released = self.allocator.release(view.key)
        self.state.pending.discard(view.key)
        self.state.last_failure.pop(view.key, None)
        metrics.PENDING.set(len(self.state.pending))
        if view.handling is Handling.DELETED:
            self.state.services.pop(view.key, None)
        elif view.current_pool is not None:
            # No longer ours (type or class changed): take back what we wrote, nothing else.
            await self.writer.set_service_ingress(view.namespace, view.name, None)
            await self.writer.set_pool_annotation(view.namespace, view.name, None)
        if released:
            metrics.RELEASES.inc()
            if view.handling is not Handling.DELETED:
                await self.writer.event(service_ref(view.namespace, view.name, view.uid), "IPReleased",
                                        f"Released IP {', '.join(released)}: {view.handling.value}")
            for name in self.state.pools:
                self._pool_dirty(name)
            self._retry_pending()

    # ---- pools -------------------------------------------------------------------------------

    async def _reconcile_pool(self, name: str) -> None:
        view = self.state.pools.get(name)
        if view is None:
            return
        overlaps = view.overlaps_with(self.state.pools.values())
        status = pool_status(view, self.allocator, overlaps)
        previous = self.state.pool_status_written.get(name)
        if previous is not None and _same_status(previous, status):
            return
        if previous is None and _same_status(view.status, status):
            self.state.pool_status_written[name] = status
            return
        await self.writer.set_pool_status(name, status)
        self.state.pool_status_written[name] = status
        for family, counts in view.metrics_counts(self.allocator).items():
            metrics.POOL_SIZE.labels(name, family).set(counts[0])
            metrics.POOL_ASSIGNED.labels(name, family).set(counts[1])
        for cond in status.get("conditions", []):
            if cond["status"] == "True" and _condition_changed(previous, cond):
                await self.writer.event(pool_ref(name, view.uid), cond["reason"], cond["message"], warning=True)


def _strip_times(status: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                         for c in status.get("conditions") or []]
    return out


def _same_status(a: Mapping[str, Any] | None, b: Mapping[str, Any]) -> bool:
    return a is not None and _strip_times(a) == _strip_times(b)


def _condition_changed(previous: Mapping[str, Any] | None, cond: Mapping[str, Any]) -> bool:
    for old in (previous or {}).get("conditions", []):
        if old["type"] == cond["type"]:
            return old["status"] != cond["status"] or old.get("message") != cond.get("message")
    return True
