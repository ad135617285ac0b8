"""Making a Service's status show what the allocator grants it, and never an IP another Service
not sharing it may still show (see shown.py): the freed Service's clear lands first."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from ironlb.api.constants import FORWARDING_NODE_PORT
from ironlb.operator.services import ServiceView, allocated_of
from ironlb.operator.writer import WriteResult, Written

if TYPE_CHECKING:
    from ironlb.core.allocator import Allocator
    from ironlb.operator.writer import ApiWriter

log = logging.getLogger(__name__)


class Shown(Enum):
    """How a request to show IPs ended."""

    ALREADY = "already"  # the status showed them: nothing was written
    WRITTEN = "written"  # one write made it show them (with the condition, if one was given)
    NOT_YET = "not-yet"  # held back (another Service still shows one) or refused: retried later


class Showing:
    """The status-writing half of the Reconciler (a mixin: it uses the reconciler's state and queue)."""

    state: Any
    allocator: Allocator
    writer: ApiWriter

    def enqueue(self, key: str) -> None:
        """Ask for KEY to be reconciled."""
        raise NotImplementedError

    def _retry_later(self, key: str) -> None:
        raise NotImplementedError

    def _ingest(self, view: ServiceView) -> ServiceView:
        raise NotImplementedError

    def _ip_mode(self, pool: str | None) -> str:
        """Proxy for NodePort-forwarding pools (kube-proxy then leaves the VIP to the speaker), else VIP."""
        view = self.state.pools.get(pool or "")
        return "Proxy" if view is not None and view.forwarding == FORWARDING_NODE_PORT else "VIP"

    async def _show(self, view: ServiceView, ips: tuple[str, ...], pool: str | None,
                    condition: dict[str, Any] | None = None, finalizer: bool = False) -> Shown:
        """Make VIEW's status show IPS from POOL (nothing, if empty), CONDITION (and with FINALIZER, the cleanup
        finalizer) in the same write if one is made."""
        mode = self._ip_mode(pool)
        if view.current_ips == tuple(ips) and view.current_modes == tuple(mode for _ in ips) \
                and view.current_pool == pool:
            return Shown.ALREADY
        blockers = self._blockers(view.key, ips)
        if blockers:
            # Another Service may still show one of these IPs: let its clear land first. Taking
            # off what this one no longer holds is always safe, and breaks any wait cycle.
            log.info("%s waits for %s to stop showing its IP", view.key, ", ".join(sorted(blockers)))
            kept = tuple(ip for ip in view.current_ips if ip in ips)
            if kept != view.current_ips:
                await self._write(view, kept, self._ip_mode(view.current_pool), view.current_pool if kept else None)
            for other in blockers:
                self.enqueue(other)
            self._retry_later(view.key)
            return Shown.NOT_YET
        return Shown.WRITTEN if (await self._write(view, ips, mode, pool, condition, finalizer)).ok else Shown.NOT_YET

    def _blockers(self, key: str, ips: Iterable[str]) -> set[str]:
        """Services, other than KEY and the IPs' grantees, whose status may still show one of IPS."""
        out: set[str] = set()
        for ip in ips:
            out |= self.state.shown.showing(ip) - self.allocator.holders(ip) - {key}
        return out

    async def _write(self, view: ServiceView, ips: tuple[str, ...], mode: str, pool: str | None,
                     condition: dict[str, Any] | None = None, finalizer: bool = False) -> Written:
        """One write: the ingress and the allocated-from-pool annotation land in one version of the
        Service, so no reader (the speaker looks up the pool) ever sees one without the other."""
        self.state.shown.writing(view.key, ips)
        finalizer = finalizer and bool(ips)
        written = await self.writer.set_service(view.namespace, view.name,
                                                [{"ip": ip, "ipMode": mode} for ip in ips] or None, pool,
                                                view.resource_version, condition, finalizer)
        self.state.shown.settled(view.key, written.ok)
        if written.ok:
            if condition is not None:
                view = replace(view, allocated=allocated_of({"conditions": [condition]}))
            if finalizer:
                view = replace(view, finalizer=True)
            self._advance(view, ips, mode, pool, written.resource_version)
        elif written.result is WriteResult.CONFLICT:  # decided on an old version: decide again on the new one
            self._retry_later(view.key)
        return written

    def _advance(self, view: ServiceView, ips: tuple[str, ...], mode: str, pool: str | None,
                 version: str | None) -> None:
        """Our write landed: know the Service as it left it, without waiting for the watch's echo
        (a reconcile before the echo would otherwise decide on the old version and get 409).
        If someone else's change has been seen meanwhile, it is kept: it is newer."""
        current = self.state.services.get(view.key)
        if current is not None and current.resource_version in (view.resource_version, version):
            self._ingest(replace(view, current_ips=tuple(ips), current_modes=tuple(mode for _ in ips),
                                 current_pool=pool, resource_version=version))

