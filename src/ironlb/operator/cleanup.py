"""The upstream cleanup finalizer's end (docs/design.md, "The cleanup finalizer"): a Service that keeps it and is
going (deleted, or no longer a LoadBalancer of ours) loses it once a speaker has said its IPs are withdrawn, or once
the wait for that has run out; only then are its IPs released."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from ironlb.api.reasons import EventReason
from ironlb.api.service import Handling
from ironlb.operator.services import ServiceView
from ironlb.operator.showing import Showing, Shown
from ironlb.operator.writer import WriteResult, service_ref


class Cleanup(Showing):
    """The finalizer-removing half of the Reconciler (a mixin: it uses the reconciler's state, queue and release)."""

    withdrawal_timeout: float  # seconds
    _cleaning_since: dict[str, float]  # key -> when this operator first saw it going (monotonic)

    async def _release(self, view: ServiceView) -> None:
        raise NotImplementedError

    async def _clean_up(self, view: ServiceView) -> None:
        """VIEW keeps the cleanup finalizer and is going (deleted, or no longer ours): once a speaker has said its
        IPs are withdrawn (or the wait for it has run out), take what we wrote back, remove the finalizer, and
        release the IPs. A Service with nothing written by us has nothing to withdraw."""
        if view.current_pool is not None and not view.withdrawn and not await self._waited_enough(view):
            return
        # No longer ours: its status and annotation go first.
        if not view.deleting and view.current_pool is not None and await self._show(view, (), None) is Shown.NOT_YET:
            return
        written = await self.writer.set_finalizer(view.namespace, view.name, False)
        if written.result in (WriteResult.CONFLICT, WriteResult.FENCED):
            self._retry_later(view.key)
            return
        self._cleaning_since.pop(view.key, None)
        # Gone (404) is fine: someone else removed it, and the Service went. What it showed is taken off already.
        await self._release(replace(view, handling=Handling.DELETED) if view.deleting else replace(
            view, current_ips=(), current_pool=None))

    async def _waited_enough(self, view: ServiceView) -> bool:
        """Has the wait for VIEW's withdrawal run out? Said once, with an Event; until then it is looked at again
        when the wait ends (any change to the Service, such as the speakers' condition, comes sooner)."""
        now = time.monotonic()
        since = self._cleaning_since.setdefault(view.key, now)
        left = since + self.withdrawal_timeout - now
        if left > 0:
            asyncio.get_running_loop().call_later(left, self.enqueue, view.key)
            return False
        await self.writer.event(
            service_ref(view.namespace, view.name, view.uid), EventReason.WITHDRAWAL_UNCONFIRMED,
            f"no speaker confirmed within {self.withdrawal_timeout:g} s that {', '.join(view.current_ips) or 'its IP'} "
            "is withdrawn (are the speakers running?): the cleanup finalizer is removed and the IP released anyway",
            warning=True)
        return True
