"""Every API write the operator makes, behind a small protocol the reconciler is tested against.

Writes are fenced twice (docs/design.md, "One writer, strictly"): no call is issued unless the leader
Lease is still inside its renew deadline, and Service writes carry the resourceVersion the
decision was made on, so a stale leader's patch is refused by the API server (409) and never lands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from ironlb.api.annotations import ALLOCATED_FROM_POOL
from ironlb.api.constants import GROUP, LB_CLEANUP_FINALIZER, VERSION
from ironlb.api.reasons import Reason
from ironlb.common.events import ObjectRef
from ironlb.common.kubeapi import (
    IP_ADDRESS_POOLS,
    L2_ADVERTISEMENTS,
    MERGE,
    SERVICES,
    STRATEGIC,
    ApiError,
    Client,
    Resource,
)

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 10.0


class WriteResult(Enum):
    """How one write ended."""

    WRITTEN = "written"
    GONE = "gone"  # the object no longer exists (404)
    CONFLICT = "conflict"  # the object changed since the decision was made (409): decide again
    FENCED = "fenced"  # the Lease is past its renew deadline: nothing was sent


@dataclass(frozen=True)
class Written:
    """A write's outcome and, when it landed, the object's new resourceVersion."""

    result: WriteResult
    resource_version: str | None = None

    @property
    def ok(self) -> bool:
        """True when the write landed."""
        return self.result is WriteResult.WRITTEN


class ApiWriter(Protocol):
    """What the reconciler writes: a Service's ingress with its annotation, pool status, Events."""

    async def set_service(self, namespace: str, name: str, ingress: list[dict[str, str]] | None, pool: str | None,
                          resource_version: str | None, condition: dict[str, Any] | None = None,
                          finalizer: bool = False) -> Written:
        """Write status.loadBalancer.ingress and the allocated-from-pool annotation (None clears each), and
        CONDITION if given (merged by type), and with FINALIZER the cleanup finalizer, all in one write."""

    async def set_service_condition(self, namespace: str, name: str, condition: dict[str, Any]) -> Written:
        """Write one status condition on a Service (merged by type: other conditions are kept)."""

    async def set_finalizer(self, namespace: str, name: str, present: bool) -> Written:
        """Add (PRESENT) or remove the cleanup finalizer of a Service, leaving any other finalizer alone."""

    async def set_pool_status(self, name: str, status: dict[str, Any]) -> Written:
        """Merge-patch an IPAddressPool's status."""

    async def set_advertisement_status(self, name: str, status: dict[str, Any]) -> Written:
        """Merge-patch an L2Advertisement's status."""

    async def event(self, ref: ObjectRef, reason: Reason, message: str, warning: bool = False,
                    detail: Reason | None = None) -> None:
        """Record an Event, DETAIL in its ironlb.io/reason annotation (aggregated and rate-limited; never raises)."""


class EventRecorderLike(Protocol):
    """The part of ironlb.common.events.EventRecorder the writer uses."""

    def submit(self, ref: ObjectRef, reason: Reason, message: str, *, warning: bool = False,
               detail: Reason | None = None) -> object:
        """Queue an Event for writing; never blocks on the API."""


def service_ref(namespace: str, name: str, uid: str | None) -> ObjectRef:
    """Reference to a Service."""
    return ObjectRef("v1", "Service", name, namespace, uid)


def pool_ref(name: str, uid: str | None) -> ObjectRef:
    """Reference to an IPAddressPool."""
    return ObjectRef(f"{GROUP}/{VERSION}", "IPAddressPool", name, None, uid)


class Writer:
    """The API-backed ApiWriter: status patches through the blocking client in a bounded pool of threads,
    fenced by the Lease."""

    def __init__(self, kube: Client, recorder: EventRecorderLike, may_write: Callable[[], bool],
                 concurrency: int = 16) -> None:
        self.kube = kube
        self.recorder = recorder
        self.may_write = may_write
        self._slots = asyncio.Semaphore(concurrency)

    async def _patch_status(self, resource: Resource, name: str, body: dict[str, Any], namespace: str | None,
                            content_type: str) -> Written:
        async with self._slots:
            return await asyncio.to_thread(self._fenced, resource, name, body, namespace, content_type)

    def _fenced(self, resource: Resource, name: str, body: dict[str, Any], namespace: str | None,
                content_type: str) -> Written:
        # Checked in the thread, right before the request goes out: a slot may have been waited for.
        if not self.may_write():
            return Written(WriteResult.FENCED)
        try:
            out = self.kube.patch(resource, name, body, namespace, subresource="status", content_type=content_type,
                                  timeout=REQUEST_TIMEOUT_S)
        except ApiError as exc:
            if exc.status == 404:
                return Written(WriteResult.GONE)
            if exc.status == 409:
                return Written(WriteResult.CONFLICT)
            raise
        return Written(WriteResult.WRITTEN, (out.get("metadata") or {}).get("resourceVersion"))

    async def set_service(self, namespace: str, name: str, ingress: list[dict[str, str]] | None, pool: str | None,
                          resource_version: str | None, condition: dict[str, Any] | None = None,
                          finalizer: bool = False) -> Written:
        """One patch of services/status carrying both the ingress and the annotation, applied only on
        top of RESOURCE_VERSION. The status strategy of Services resets only spec, so metadata in a
        status patch is kept: the two land together, in one version, at the cost of one write.
        CONDITION rides along: status.conditions merges by type, so the speaker's stay. So does the
        cleanup FINALIZER (metadata.finalizers merges: any other stays)."""
        status: dict[str, Any] = {"loadBalancer": {"ingress": ingress}}
        if condition is not None:
            status["conditions"] = [condition]
        meta: dict[str, Any] = {**_precondition(resource_version), "annotations": {ALLOCATED_FROM_POOL: pool}}
        if finalizer:
            meta["finalizers"] = [LB_CLEANUP_FINALIZER]
        body = {"metadata": meta, "status": status}
        return await self._patch_status(SERVICES, name, body, namespace, STRATEGIC)

    async def set_service_condition(self, namespace: str, name: str, condition: dict[str, Any]) -> Written:
        """Strategic-merge-patch one condition: status.conditions merges by type, so the speaker's stay."""
        return await self._patch_status(SERVICES, name, {"status": {"conditions": [condition]}}, namespace, STRATEGIC)

    async def set_finalizer(self, namespace: str, name: str, present: bool) -> Written:
        """Strategic-merge-patch metadata.finalizers, through services/status as the annotation (see set_service):
        the list merges, so adding keeps the others, and the deleteFromPrimitiveList directive takes out ours alone."""
        finalizers = [LB_CLEANUP_FINALIZER]
        meta = {"finalizers": finalizers} if present else {"$deleteFromPrimitiveList/finalizers": finalizers}
        return await self._patch_status(SERVICES, name, {"metadata": meta}, namespace, STRATEGIC)

    async def set_pool_status(self, name: str, status: dict[str, Any]) -> Written:
        """Merge-patch an IPAddressPool's status (custom resources take no strategic merge)."""
        return await self._patch_status(IP_ADDRESS_POOLS, name, {"status": status}, None, MERGE)

    async def set_advertisement_status(self, name: str, status: dict[str, Any]) -> Written:
        """Merge-patch an L2Advertisement's status."""
        return await self._patch_status(L2_ADVERTISEMENTS, name, {"status": status}, None, MERGE)

    async def set_object_status(self, resource: Resource, name: str, status: dict[str, Any]) -> Written:
        """Merge-patch the status of one of IronLB's cluster-scoped objects (the BGP objects' Invalid condition)."""
        return await self._patch_status(resource, name, {"status": status}, None, MERGE)

    async def event(self, ref: ObjectRef, reason: Reason, message: str, warning: bool = False,
                    detail: Reason | None = None) -> None:
        """Queue an Event on the shared recorder, unless fenced (a stale leader says nothing).

        Not awaited: a reconcile is not held up by the Event that reports it."""
        if self.may_write():
            self.recorder.submit(ref, reason, message, warning=warning, detail=detail)


def _precondition(resource_version: str | None) -> dict[str, str]:
    """metadata that makes a patch apply only to that version of the object (409 otherwise)."""
    return {"resourceVersion": resource_version} if resource_version else {}
