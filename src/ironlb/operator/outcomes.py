"""What a reconcile of one Service ends in: its IPs granted (and shown), the request refused (and said why, once),
or its IPs released; and the Allocated condition and Events that say so."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any

from ironlb.api.conditions import condition, now_stamp
from ironlb.api.reasons import ConditionType, EventReason
from ironlb.api.service import Handling
from ironlb.core.allocator import Allocation, AllocationReason
from ironlb.operator import metrics
from ironlb.operator.cleanup import Cleanup
from ironlb.operator.services import ServiceView
from ironlb.operator.showing import Shown
from ironlb.operator.writer import service_ref

if TYPE_CHECKING:
    from ironlb.core.allocator import Allocator

log = logging.getLogger("ironlb.operator.reconciler")  # the reconciler's own logger, as before the split


class AllocationEvents(Enum):
    """Which allocations an IPAllocated Event reports (docs/design.md, "A lean operator")."""

    MOVES = "moves"  # only a Service whose status showed other IPs: a first assignment is its status alone
    ALL = "all"  # every allocation that changes what a Service shows


def says_allocation(policy: AllocationEvents, shown_before: tuple[str, ...]) -> bool:
    """Whether an allocation that changes what a Service shows (SHOWN_BEFORE: what it showed) gets an Event."""
    return policy is AllocationEvents.ALL or bool(shown_before)


def allocated_condition(ok: bool, reason: AllocationReason, message: str) -> dict[str, Any]:
    """The Service's Allocated condition (REASON: the allocator's enum value)."""
    return condition(ConditionType.SERVICE_ALLOCATED, ok, reason, message[:1024], since=now_stamp())


class Outcomes(Cleanup):
    """The granting, refusing and releasing half of the Reconciler (a mixin: it uses the reconciler's state,
    allocator, writer and queue)."""

    allocator: Allocator
    allocation_events: AllocationEvents

    def _freed(self, ips: Iterable[str], pool: str | None) -> None:
        raise NotImplementedError

    def _pool_dirty(self, name: str) -> None:
        raise NotImplementedError

    async def _granted(self, view: ServiceView, allocation: Allocation) -> None:
        self.state.pending.discard(view.key)
        self.state.last_failure.pop(view.key, None)
        metrics.show_pending(self.state.pending.reasons())
        changed_ips = tuple(allocation.ips) != view.current_ips
        over = None  # it said why not: say it is over, in the write that shows the IP when there is one
        if view.allocated is not None and not view.allocated[0]:
            over = allocated_condition(True, allocation.reason,
                                       f"assigned {', '.join(allocation.ips)} from pool {allocation.pool}")
        # The cleanup finalizer lands with the IP it guards (in the same write), or on its own when the Service
        # shows its IP already (an upgrade, a takeover from MetalLB, which adds none).
        shown = await self._show(view, allocation.ips, allocation.pool, over, finalizer=not view.finalizer)
        if shown is Shown.NOT_YET:
            return
        if shown is Shown.ALREADY and not view.finalizer:
            await self.writer.set_finalizer(view.namespace, view.name, True)
        if over is not None and shown is Shown.ALREADY:
            await self._put_condition(view, over)
        if not changed_ips:
            return
        metrics.ALLOCATIONS.labels(allocation.pool).inc()
        ref = service_ref(view.namespace, view.name, view.uid)
        # A first assignment is said by the status write itself: an Event would double its API writes.
        if says_allocation(self.allocation_events, view.current_ips):
            await self.writer.event(ref, EventReason.IP_ALLOCATED,
                                    f"Assigned IP {', '.join(allocation.ips)} from pool {allocation.pool}")
        for note in view.deprecations:
            await self.writer.event(ref, EventReason.DEPRECATED_CONFIGURATION, note, warning=True)
        self._pool_dirty(allocation.pool or "")
        if view.current_pool and view.current_pool != allocation.pool:
            self._pool_dirty(view.current_pool)

    async def _refused(self, view: ServiceView, reason: AllocationReason, message: str) -> None:
        """The request cannot be met: status keeps only what is still granted; say why (REASON), once."""
        self.state.pending.add(view.key, view.request, reason)
        metrics.show_pending(self.state.pending.reasons())
        held = self.allocator.assignment(view.key)  # a failed new request keeps the IPs it had
        await self._show(view, held[0] if held else (), held[1] if held else None)
        text = f"Failed to allocate IP for {view.key} ({reason.value}): {message}"
        said = self.state.last_failure.get(view.key)
        # Said already: a retry with the same outcome is not news (a hold's countdown is no change).
        if said is not None and said[0] is reason and (reason is AllocationReason.REQUESTED_IP_HELD or said[1] == text):
            return
        self.state.last_failure[view.key] = (reason, text)
        metrics.ALLOCATION_FAILURES.labels(reason.value).inc()
        if said is not None or view.allocated != (False, reason):  # after a restart: only if it changed
            await self._condition(view, False, reason, message)
        await self.writer.event(service_ref(view.namespace, view.name, view.uid), EventReason.ALLOCATION_FAILED, text,
                                warning=True, detail=reason)

    async def _release(self, view: ServiceView) -> None:
        held = self.allocator.assignment(view.key)
        released_from = held[1] if held else None
        released = self.allocator.release(view.key)
        self.state.pending.discard(view.key)
        self.state.last_failure.pop(view.key, None)
        metrics.show_pending(self.state.pending.reasons())
        if view.handling is Handling.DELETED:
            self.state.services.pop(view.key, None)
            self.state.shown.forget(view.key)
        elif view.current_pool is not None:
            await self._show(view, (), None)  # no longer ours (type or class changed): take back what we wrote
        if released:
            metrics.RELEASES.inc()
            if view.handling is not Handling.DELETED:
                await self.writer.event(service_ref(view.namespace, view.name, view.uid), EventReason.IP_RELEASED,
                                        f"Released IP {', '.join(released)}: {view.handling.value}")
            for name in self.state.pools:
                self._pool_dirty(name)
            self._freed(released, released_from)

    async def _condition(self, view: ServiceView, ok: bool, reason: AllocationReason, message: str) -> None:
        """Write the Service's Allocated condition (REASON: the allocator's enum value)."""
        await self._put_condition(view, allocated_condition(ok, reason, message))

    async def _put_condition(self, view: ServiceView, allocated: dict[str, Any]) -> None:
        try:
            await self.writer.set_service_condition(view.namespace, view.name, allocated)
        except Exception as exc:  # the Event has said it already: a refused condition must not re-run the reconcile
            log.warning("could not write the %s condition on %s: %s", ConditionType.SERVICE_ALLOCATED.value, view.key,
                        exc)
