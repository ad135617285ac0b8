"""The operator's heart: keeps the allocator in step with Services and pools, and writes results.

Two rules hold at every moment (docs/design.md, "Never two at once"):
- a Service's status shows exactly what the allocator grants it: an IP no longer granted leaves
  `status.loadBalancer.ingress` and the allocated-from-pool annotation in the same reconcile;
- no IP is written into one Service's status while another Service that is not sharing it may
  still show it (see shown.py): the freed Service's clear lands first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ironlb.api.constants import DEFAULT_WITHDRAWAL_TIMEOUT_S
from ironlb.api.service import Handling
from ironlb.core.addresses import int_to_ip
from ironlb.core.allocator import AllocationReason, Allocator
from ironlb.core.holds import Hold
from ironlb.operator import metrics
from ironlb.operator.advertisements import AdvertisementView
from ironlb.operator.outcomes import AllocationEvents, Outcomes, allocated_condition, says_allocation
from ironlb.operator.pending import Pending
from ironlb.operator.pools import PoolView, recorded_holds
from ironlb.operator.services import ServiceView, deleted_view, view_of
from ironlb.operator.shown import ShownIPs
from ironlb.operator.status import ObjectStatus
from ironlb.operator.workqueue import RETRY_S, WorkQueue
from ironlb.operator.writer import ApiWriter

log = logging.getLogger(__name__)
# Split along what each part holds (the queue, the outcomes of a reconcile); these names stay importable from here.
__all__ = ["RETRY_S", "AllocationEvents", "Reconciler", "State", "allocated_condition", "says_allocation"]


@dataclass
class State:
    """Everything the operator knows, kept in step by the watch handlers."""

    lb_class: str | None
    services: dict[str, ServiceView] = field(default_factory=dict)
    pools: dict[str, PoolView] = field(default_factory=dict)
    advertisements: dict[str, AdvertisementView] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    pending: Pending = field(default_factory=Pending)
    last_failure: dict[str, tuple[AllocationReason, str]] = field(default_factory=dict)  # key -> (reason, Event text)
    shown: ShownIPs = field(default_factory=ShownIPs)


class Reconciler(WorkQueue, Outcomes):
    """Serialises decisions (allocator calls are synchronous) and runs API writes concurrently."""

    def __init__(self, writer: ApiWriter, lb_class: str | None, workers: int = 16, reuse_delay: float = 0.0,
                 allocation_events: AllocationEvents = AllocationEvents.MOVES,
                 withdrawal_timeout: float = DEFAULT_WITHDRAWAL_TIMEOUT_S) -> None:
        # Wall-clock time: hold ends are recorded in pool status and must mean the same after a restart.
        self.allocator = Allocator(reuse_delay, clock=time.time)
        self.state = State(lb_class=lb_class)
        self.writer = writer
        self.status = ObjectStatus(writer, self.allocator, self.state.pools, self.state.advertisements)
        self.workers = workers
        self.allocation_events = allocation_events
        # The longest wait for a speaker to confirm a going Service's withdrawal (seconds), and when this operator
        # first saw each one going (see docs/design.md, "The cleanup finalizer").
        self.withdrawal_timeout = withdrawal_timeout
        self._cleaning_since = {}
        self.restored = asyncio.Event()
        self._init_queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._hold_timer: asyncio.TimerHandle | None = None

    # ---- start-up ----------------------------------------------------------------------------

    def restore(self, services: Iterable[Mapping[str, Any]], pools: Iterable[Mapping[str, Any]],
                namespaces: Mapping[str, Mapping[str, str]], advertisements: Iterable[Mapping[str, Any]] = ()) -> int:
        """Register every existing assignment before any new allocation; return how many were kept.

        SERVICES are bodies not yet seen: those the watch handed to service_event are known already."""
        self.state.namespace_labels = {k: dict(v) for k, v in namespaces.items()}
        for body in advertisements:
            ad = AdvertisementView.from_body(body)
            self.state.advertisements[ad.name] = ad
        for body in pools:
            view = PoolView.from_body(body)
            self.state.pools[view.name] = view
        self.allocator.set_pools(self._valid_pools())
        for view in self.state.pools.values():  # before the Services: one showing a held IP keeps it
            for ip, namespace, key, until in recorded_holds(view):
                self.allocator.hold(ip, namespace, key, view.name, until)
        for body in services:
            self._ingest(self._view(body))
        kept = 0
        for view in list(self.state.services.values()):
            view = self._refresh(view)  # views made by watch events before restore lack namespace labels
            restorable = view.handling is Handling.HANDLED and view.current_ips and view.request
            # IPs in status are restored whoever wrote them (a takeover from MetalLB keeps every IP),
            # as long as an IronLB pool covers them and serves the Service.
            kept_ips = bool(restorable and self.allocator.restore(view.request, list(view.current_ips),
                                                                  view.pool_hint).ok)
            kept += kept_ips
            if view.ours:
                # Everything is checked once against its current request: it may have been edited
                # while no operator ran. Most of those that kept their IPs find nothing to write.
                (self._recheck if kept_ips else self.enqueue)(view.key)
        self._objects_dirty()
        self.restored.set()
        self._schedule_hold_end()
        log.info("restored %d assignments from %d services, %d pools", kept, len(self.state.services),
                 len(self.state.pools))
        return kept

    def start(self) -> None:
        """Start the worker tasks."""
        self._tasks = [asyncio.create_task(self._worker(), name=f"reconcile-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        """Stop the workers (and the hold timer)."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- inputs from watch handlers ----------------------------------------------------------

    def _view(self, body: Mapping[str, Any]) -> ServiceView:
        ns = body.get("metadata", {}).get("namespace", "default")
        return view_of(body, self.state.lb_class, self.state.namespace_labels.get(ns))

    def _ingest(self, view: ServiceView) -> ServiceView:
        """Keep VIEW as the latest word on its Service, and what its status shows."""
        self.state.services[view.key] = view
        if view.ours:
            self.state.shown.observe(view.key, view.current_ips)
        else:
            self.state.shown.forget(view.key)
        return view

    def service_event(self, body: Mapping[str, Any], deleted: bool) -> None:
        """A Service was added, changed or deleted."""
        meta = body["metadata"]
        view = deleted_view(meta.get("namespace", "default"), meta["name"]) if deleted else self._view(body)
        if not view.ours and view.key not in self.state.services:
            return  # never ours (a ClusterIP Service, another class): nothing to know, nothing to do
        self._ingest(view)
        if self.restored.is_set():  # before that, restore() decides what needs work
            self.enqueue(view.key)

    def pool_event(self, body: Mapping[str, Any], deleted: bool) -> None:
        """An IPAddressPool was added, changed or deleted: reconfigure, re-allocate what lost cover."""
        name = body["metadata"]["name"]
        new: PoolView | None = None
        if deleted:
            self._forget("pool", self.state.pools, name)
        else:
            old = self.state.pools.get(name)
            new = PoolView.from_body(body).keeping(old)  # an invalid edit keeps the last valid spec
            self.state.pools[name] = new
            if old and old.same_config(new):
                self._pool_dirty(name)
                return
            if old and old.forwarding != new.forwarding:  # ipMode of every Service in it changes
                for key, view in self.state.services.items():
                    if view.current_pool == name:
                        self.enqueue(key)
        for key in self.allocator.set_pools(self._valid_pools()):
            self.enqueue(key)
        if new is not None and new.pool is not None:
            self._wake(self.state.pending.helped_by_pool(new.pool))
        self._objects_dirty()

    def advertisement_event(self, body: Mapping[str, Any], deleted: bool) -> None:
        """An L2Advertisement changed: which pools are announced, and whether the ones it names exist."""
        name = body["metadata"]["name"]
        if deleted:
            self._forget("advertisement", self.state.advertisements, name)
        else:
            self.state.advertisements[name] = AdvertisementView.from_body(body)
        self._objects_dirty()

    def _forget(self, kind: str, known: dict[str, Any], name: str) -> None:
        # A deleted object's status is forgotten too: one made again under that name starts afresh.
        known.pop(name, None)
        self.status.forget(kind, name)

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
                self.enqueue(key)  # the request's copy of the labels is refreshed on reconcile

    def _valid_pools(self) -> list[Any]:
        return [v.pool for v in self.state.pools.values() if v.pool is not None]

    def _wake(self, keys: set[str]) -> None:
        for key in sorted(keys):
            self.enqueue(key)
        metrics.PENDING_RETRIES.inc(len(keys))

    def _freed(self, ips: Iterable[str], pool: str | None) -> None:
        """IPS left a Service: retry the pending Services they can serve, and time their holds' end."""
        view = self.state.pools.get(pool or "")
        self._wake(self.state.pending.helped_by_release(ips, view.pool if view else None))
        self._schedule_hold_end()

    def _schedule_hold_end(self) -> None:
        """Wake at the earliest hold's end (one timer: later holds end later, the delay being one)."""
        end = self.allocator.holds.next_end()
        if end is None or self._hold_timer is not None:
            return
        self._hold_timer = asyncio.get_running_loop().call_later(max(0.0, end - time.time()), self._holds_ended)

    def _holds_ended(self) -> None:
        self._hold_timer = None
        ended: list[Hold] = self.allocator.expire()
        for hold in ended:
            self._pool_dirty(hold.pool)
            self._freed([int_to_ip(*hold.ip)], hold.pool)
        self._schedule_hold_end()

    # ---- Services ----------------------------------------------------------------------------

    async def _reconcile_service(self, key: str) -> None:
        view = self.state.services.get(key)
        if view is None:
            return
        if view.cleaning:
            await self._clean_up(view)
            return
        if view.deleting:  # going, and the finalizer is not (or no longer) ours to wait on: never assigned again
            await self._release(replace(view, handling=Handling.DELETED))
            return
        if view.handling is not Handling.HANDLED:
            await self._release(view)
            return
        if view.request_error:
            await self._refused(view, AllocationReason.INVALID_REQUEST, view.request_error)
            return
        view = self._refresh(view)
        before = self.allocator.assignment(view.key)
        allocation = self.allocator.assign(view.request)
        if not allocation.ok:
            await self._refused(view, allocation.reason, allocation.message)
            return
        if before and set(before[0]) - set(allocation.ips):  # moved: what it left may serve others
            self._freed(sorted(set(before[0]) - set(allocation.ips)), before[1])
            self._pool_dirty(before[1])
        await self._granted(view, allocation)

    def _refresh(self, view: ServiceView) -> ServiceView:
        """Namespace labels may have changed since the view was made: hand the request the namespace's
        current dict (shared by its Services; a relabel replaces it, never changes it in place)."""
        labels = self.state.namespace_labels.get(view.namespace)
        if view.request is not None and view.request.namespace_labels is not labels:
            view.request.namespace_labels = labels if labels is not None else {}
        return view

