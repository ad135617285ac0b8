"""A recording fake of the operator's ApiWriter that behaves like the API server where it matters.

It keeps each Service's status, annotations and resourceVersion, refuses a patch made on an old
version (409), writes nothing while fenced, and feeds every change back to the reconciler as the
watch would. After every write it checks the invariant: no two Services show one IP unless
they share it (same non-empty allow-shared-ip key).
"""

from __future__ import annotations

import asyncio
import copy
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ironlb.api.annotations import ALLOCATED_FROM_POOL
from ironlb.api.constants import LB_CLEANUP_FINALIZER
from ironlb.api.reasons import AnnounceReason, ConditionType, Reason
from ironlb.common.events import EventRecorder, ObjectRef
from ironlb.operator.reconciler import Reconciler
from ironlb.operator.writer import WriteResult, Written

SHARED = "ironlb.io/allow-shared-ip"


@dataclass
class Call:
    """One write the reconciler asked for, and how it ended."""

    op: str
    target: str
    value: Any
    result: WriteResult


@dataclass
class FakeApi:
    """Services as the API server would hold them, plus a log of every write and Event."""

    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    pool_status: dict[str, dict[str, Any]] = field(default_factory=dict)
    advertisement_status: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    events: list[tuple[str, str, str, bool]] = field(default_factory=list)
    recorder: EventRecorder | None = None  # when set, every Event also goes through it (to its sink)
    fenced: bool = False
    reconciler: Reconciler | None = None
    violations: list[str] = field(default_factory=list)
    interfere: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> a user edit landing first
    # The speakers: a Service being deleted, or no longer a LoadBalancer, that keeps the cleanup finalizer and
    # IronLB's annotation is said Withdrawn at once (False: no speaker runs, nobody says it).
    speakers_withdraw: bool = True
    _rv: int = 100

    # ---- the cluster side ----------------------------------------------------------------------

    def put_service(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a Service as a user would (status kept), and tell the reconciler."""
        body = copy.deepcopy(body)
        key = f"{body['metadata'].get('namespace', 'default')}/{body['metadata']['name']}"
        old = self.services.get(key)
        body.setdefault("status", copy.deepcopy((old or {}).get("status") or {}))
        annotations = body["metadata"].setdefault("annotations", {})
        if old and ALLOCATED_FROM_POOL in (old["metadata"].get("annotations") or {}):
            annotations.setdefault(ALLOCATED_FROM_POOL, old["metadata"]["annotations"][ALLOCATED_FROM_POOL])
        body["metadata"].setdefault("uid", f"uid-{key}")
        self._store(key, body)
        return body

    def delete_service(self, key: str) -> None:
        """Delete a Service and tell the reconciler: at once, or (finalizers left) once they are all removed."""
        body = self.services[key]
        if body["metadata"].get("finalizers"):
            if not body["metadata"].get("deletionTimestamp"):
                body = copy.deepcopy(body)
                body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
                self._store(key, body)
            return
        self._gone(key)

    def _gone(self, key: str) -> None:
        body = self.services.pop(key)
        if self.reconciler is not None:
            self.reconciler.service_event(body, deleted=True)

    def finalizers(self, key: str) -> list[str]:
        """A Service's finalizers."""
        return list(self.services[key]["metadata"].get("finalizers") or [])

    def shown(self, key: str) -> tuple[str, ...]:
        """The IPs a Service's status shows."""
        ingress = ((self.services[key].get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        return tuple(i["ip"] for i in ingress)

    def annotation(self, key: str) -> str | None:
        """The allocated-from-pool annotation of a Service."""
        return (self.services[key]["metadata"].get("annotations") or {}).get(ALLOCATED_FROM_POOL)

    def _store(self, key: str, body: dict[str, Any]) -> None:
        self._rv += 1
        body["metadata"]["resourceVersion"] = str(self._rv)
        self.services[key] = body
        self._check()
        if self.speakers_withdraw and self._withdrawing(body):
            self._say_withdrawn(body)
        if self.reconciler is not None:  # the watch delivers it a moment later
            asyncio.get_running_loop().call_soon(self.reconciler.service_event, copy.deepcopy(body), False)

    @staticmethod
    def _withdrawing(body: dict[str, Any]) -> bool:
        meta = body["metadata"]
        return (LB_CLEANUP_FINALIZER in (meta.get("finalizers") or []) and bool(meta.get("annotations", {}).get(
            ALLOCATED_FROM_POOL)) and (bool(meta.get("deletionTimestamp")) or body.get("spec", {}).get("type")
                                       != "LoadBalancer"))

    @staticmethod
    def _say_withdrawn(body: dict[str, Any]) -> None:
        """What the speaker that announced it writes once it stopped (in the same version here: no write counted)."""
        said = {"type": ConditionType.SERVICE_ANNOUNCED.value, "status": "False",
                "reason": AnnounceReason.WITHDRAWN.value}
        status = body.setdefault("status", {})
        status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != said["type"]] + [said]

    def _check(self) -> None:
        by_ip: dict[str, list[str]] = defaultdict(list)
        for key in self.services:
            for ip in self.shown(key):
                by_ip[ip].append(key)
        for ip, keys in by_ip.items():
            share = {(self.services[k]["metadata"].get("annotations") or {}).get(SHARED) for k in keys}
            if len(keys) > 1 and (len(share) != 1 or None in share or "" in share):
                self.violations.append(f"{ip} shown by {sorted(keys)}")

    # ---- the ApiWriter protocol ----------------------------------------------------------------

    def _patch(self, namespace: str, name: str, ingress: Any, pool: str | None, rv: str | None,
               condition: dict[str, Any] | None = None, finalizer: bool = False) -> Written:
        key = f"{namespace}/{name}"
        if key in self.interfere:  # someone else's edit lands between our decision and our write
            self.put_service(self.interfere.pop(key))
        result = WriteResult.WRITTEN
        if self.fenced:
            result = WriteResult.FENCED
        elif key not in self.services:
            result = WriteResult.GONE
        elif rv is not None and rv != self.services[key]["metadata"]["resourceVersion"]:
            result = WriteResult.CONFLICT
        # One call is one write: a condition carried by it is part of its value.
        self.calls.append(Call("service", key, (ingress, pool) if condition is None else (ingress, pool, condition),
                               result))
        if result is not WriteResult.WRITTEN:
            return Written(result)
        body = copy.deepcopy(self.services[key])
        status = body.setdefault("status", {})
        status["loadBalancer"] = {"ingress": ingress} if ingress else {}
        if condition is not None:
            status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != condition["type"]] + [
                dict(condition)]
        annotations = body["metadata"].setdefault("annotations", {})
        if pool is None:
            annotations.pop(ALLOCATED_FROM_POOL, None)
        else:
            annotations[ALLOCATED_FROM_POOL] = pool
        if finalizer and LB_CLEANUP_FINALIZER not in (body["metadata"].get("finalizers") or []):
            body["metadata"]["finalizers"] = [*(body["metadata"].get("finalizers") or []), LB_CLEANUP_FINALIZER]
        self._store(key, body)
        return Written(result, body["metadata"]["resourceVersion"])

    async def set_service(self, namespace: str, name: str, ingress: list[dict[str, str]] | None, pool: str | None,
                          resource_version: str | None, condition: dict[str, Any] | None = None,
                          finalizer: bool = False) -> Written:
        """Patch status.loadBalancer.ingress and the annotation together (one version), CONDITION and the
        cleanup FINALIZER with them."""
        await asyncio.sleep(0)  # a write takes a turn of the loop, as a real one does
        return self._patch(namespace, name, ingress, pool, resource_version, condition, finalizer)

    async def _begin(self, op: str, namespace: str, name: str, value: Any) -> tuple[str, dict[str, Any] | Written]:
        """A write of OP: its key, and a copy of the Service to change (or why it is refused: fenced, gone)."""
        await asyncio.sleep(0)  # a write takes a turn of the loop, as a real one does
        key = f"{namespace}/{name}"
        if self.fenced:
            return key, Written(WriteResult.FENCED)
        if key not in self.services:
            return key, Written(WriteResult.GONE)
        self.calls.append(Call(op, key, value, WriteResult.WRITTEN))
        return key, copy.deepcopy(self.services[key])

    async def set_service_condition(self, namespace: str, name: str, condition: dict[str, Any]) -> Written:
        """Merge one condition into a Service's status.conditions (by type)."""
        key, body = await self._begin("condition", namespace, name, dict(condition))
        if isinstance(body, Written):
            return body
        status = body.setdefault("status", {})
        status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != condition["type"]] + [
            dict(condition)]
        self._store(key, body)
        return Written(WriteResult.WRITTEN, body["metadata"]["resourceVersion"])

    def condition(self, key: str, ctype: str) -> dict[str, Any] | None:
        """A Service's condition of type CTYPE."""
        return next((c for c in (self.services[key].get("status") or {}).get("conditions") or []
                     if c["type"] == ctype), None)

    async def set_finalizer(self, namespace: str, name: str, present: bool) -> Written:
        """Add or remove the cleanup finalizer; a Service being deleted goes with its last finalizer."""
        key, body = await self._begin("finalizer", namespace, name, present)
        if isinstance(body, Written):
            return body
        finalizers = [f for f in body["metadata"].get("finalizers") or [] if f != LB_CLEANUP_FINALIZER]
        body["metadata"]["finalizers"] = finalizers + ([LB_CLEANUP_FINALIZER] if present else [])
        if not body["metadata"]["finalizers"] and body["metadata"].get("deletionTimestamp"):
            self.services[key] = body
            self._gone(key)
            return Written(WriteResult.WRITTEN)
        self._store(key, body)
        return Written(WriteResult.WRITTEN, body["metadata"]["resourceVersion"])

    async def set_pool_status(self, name: str, status: dict[str, Any]) -> Written:
        """Patch a pool's status."""
        if self.fenced:
            return Written(WriteResult.FENCED)
        self.pool_status[name] = copy.deepcopy(status)
        return Written(WriteResult.WRITTEN, "1")

    async def set_advertisement_status(self, name: str, status: dict[str, Any]) -> Written:
        """Patch an L2Advertisement's status."""
        if self.fenced:
            return Written(WriteResult.FENCED)
        self.advertisement_status[name] = copy.deepcopy(status)
        return Written(WriteResult.WRITTEN, "1")

    async def event(self, ref: ObjectRef, reason: Reason, message: str, warning: bool = False,
                    detail: Reason | None = None) -> None:
        """Record an Event (its reason's value), and hand it to the recorder if there is one."""
        if not self.fenced:
            target = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
            self.events.append((target, reason.value, message, warning))
            if self.recorder is not None:
                self.recorder.submit(ref, reason, message, warning=warning, detail=detail)
