"""The status the operator writes on IPAddressPools and L2Advertisements, and their Events.

A status is written only when it differs from what was last written (or, after a restart, from
what the object already shows), and an Event is recorded when a condition turns into a problem
or its message changes while it is one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ironlb.api.constants import GROUP, L2ADVERTISEMENT_KIND, VERSION
from ironlb.api.reasons import ConfigReason
from ironlb.common.events import ObjectRef
from ironlb.core.allocator import Allocator
from ironlb.operator import metrics
from ironlb.operator.advertisements import (
    AdvertisementView,
    advertisement_status,
    announced_by,
    announced_condition,
)
from ironlb.operator.pools import PoolView, condition_changed, is_problem, pool_status, same_status
from ironlb.operator.writer import ApiWriter, Written, pool_ref


def advertisement_ref(name: str, uid: str | None) -> ObjectRef:
    """Reference to an L2Advertisement."""
    return ObjectRef(f"{GROUP}/{VERSION}", L2ADVERTISEMENT_KIND, name, None, uid)


class ObjectStatus:
    """Writes pool and advertisement status from the reconciler's state (which it only reads)."""

    def __init__(self, writer: ApiWriter, allocator: Allocator, pools: Mapping[str, PoolView],
                 advertisements: Mapping[str, AdvertisementView]) -> None:
        self.writer, self.allocator = writer, allocator
        self.pools, self.advertisements = pools, advertisements
        self._written: dict[tuple[str, str], dict[str, Any]] = {}

    def forget(self, kind: str, name: str) -> None:
        """The object (kind "pool" or "advertisement") is gone: one made later under NAME starts afresh."""
        self._written.pop((kind, name), None)

    async def reconcile_pool(self, name: str) -> None:
        """Pool metrics, and its status: counts, Invalid, Overlapping, Announced."""
        view = self.pools.get(name)
        if view is None:
            return
        for family, counts in view.metrics_counts(self.allocator).items():
            metrics.POOL_SIZE.labels(name, family).set(counts[0])
            metrics.POOL_ASSIGNED.labels(name, family).set(counts[1])
        announced = announced_condition(announced_by(view, self.advertisements.values()), view)
        status = pool_status(view, self.allocator, view.overlaps_with(self.pools.values()), announced)
        await self._write(("pool", name), view.status, status, pool_ref(name, view.uid), self.writer.set_pool_status)

    async def reconcile_advertisement(self, name: str) -> None:
        """An advertisement's status: MissingPools."""
        view = self.advertisements.get(name)
        if view is None:
            return
        status = advertisement_status(view, self.pools.keys())
        await self._write(("advertisement", name), view.status, status, advertisement_ref(name, view.uid),
                          self.writer.set_advertisement_status)

    async def _write(self, key: tuple[str, str], shown: Mapping[str, Any], status: dict[str, Any],
                     ref: ObjectRef, write: Callable[[str, dict[str, Any]], Awaitable[Written]]) -> None:
        previous = self._written.get(key)
        if previous is not None and same_status(previous, status):
            return
        if previous is None and same_status(shown, status):
            self._written[key] = status
            return
        if not (await write(key[1], status)).ok:
            return
        self._written[key] = status
        for cond in status.get("conditions", []):
            if is_problem(cond) and condition_changed(previous or shown, cond):
                await self.writer.event(ref, ConfigReason(cond["reason"]), cond["message"], warning=True)
