"""The one Event recorder of IronLB (operator and speaker): correlated as client-go does, written by one thread.

`EventRecorder.record()` runs the pure `Correlator` (aggregation, de-duplication, spam filter)
under a lock, then hands the write to a single writer thread that calls the blocking `EventSink`.
Writes waiting for the same Event object are merged (only the newest count is sent), the queue is
bounded, and nothing raises to the caller: an Event is worth less than the work it reports. No
input, however fast it arrives, makes more than `burst` API writes per (source, object) plus one
per `refill_s`; and a reason given a budget (one the network can provoke on every object at once) makes no
more than that budget's writes in the whole process, whatever the number of objects.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ironlb.api.annotations import EVENT_REASON
from ironlb.api.reasons import Reason
from ironlb.common.correlator import Correlation, Correlator, EventKey, Outcome, TokenBucket
from ironlb.common.kubeapi import EVENTS, ApiError, Client
from ironlb.common.throttle import Throttle

log = logging.getLogger(__name__)
CLUSTER_SCOPED_NAMESPACE = "default"  # where Events about cluster-scoped objects go, as kubectl looks for them
STATS = (*(outcome.value for outcome in Outcome), "failed")
MAX_PENDING = 1024  # writes waiting for the API; past this an Event is counted failed, not queued


@dataclass(frozen=True)
class Budget:
    """Writes one reason may make in the whole process: `burst` at once, then one per `refill_s`."""

    burst: int
    refill_s: float


@dataclass(frozen=True)
class ObjectRef:
    """What an Event is about."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    uid: str | None


class EventNotFound(Exception):
    """A patched Event no longer exists (Events expire after an hour): create it again."""


class EventSink(Protocol):
    """Where Events go; blocking calls, run in the recorder's writer thread."""

    def create(self, namespace: str, body: dict[str, Any]) -> None:
        """Create the Event BODY (a core/v1 Event as JSON) in NAMESPACE."""

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Merge-patch Event NAME; raise EventNotFound if it does not exist."""


class KubeEventSink:
    """core/v1 Events through the API client, every call with a request timeout."""

    def __init__(self, client: Client, timeout_s: float = 10.0) -> None:
        self.client, self.timeout_s = client, timeout_s

    def create(self, namespace: str, body: dict[str, Any]) -> None:
        """POST the Event."""
        self.client.create(EVENTS, body, namespace, timeout=self.timeout_s)

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """PATCH (strategic merge) the Event's count, lastTimestamp and message."""
        try:
            self.client.patch(EVENTS, name, body, namespace, timeout=self.timeout_s)
        except ApiError as exc:
            if exc.status == 404:
                raise EventNotFound(name) from exc
            raise


@dataclass
class _Write:
    """One Event object's pending write; later occurrences merge into it before it is sent."""

    namespace: str
    body: dict[str, Any]
    create: bool
    outcomes: list[Outcome] = field(default_factory=list)
    future: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)


def _timestamp(wall: float) -> str:
    return dt.datetime.fromtimestamp(wall, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Records Events on objects: aggregated, rate-limited, never raising, safe to call from any thread."""

    def __init__(self, sink: EventSink, component: str, instance: str, *, burst: int = 25,
                 refill_s: float = 300.0, cache_size: int = 4096, clock: Callable[[], float] = time.monotonic,
                 max_pending: int = MAX_PENDING, budgets: Mapping[Reason, Budget] | None = None) -> None:
        self.sink, self.component, self.instance = sink, component, instance[:128]
        self.clock, self.max_pending = clock, max_pending
        self._correlator = Correlator(burst=burst, refill_s=refill_s, cache_size=cache_size)
        # Reason -> its process-wide bucket, on top of the correlator's per-object one.
        now = clock()
        self._budgets = {reason.value: TokenBucket(b.burst, b.refill_s, now) for reason, b in (budgets or {}).items()}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: OrderedDict[tuple[str, str], _Write] = OrderedDict()  # (namespace, name) -> write
        self._stats = dict.fromkeys(STATS, 0)
        self._writer: threading.Thread | None = None
        self._closed = False
        self._failure_log = Throttle(60.0)

    async def record(self, ref: ObjectRef, reason: Reason, message: str, *, warning: bool = False,
                     detail: Reason | None = None) -> None:
        """Record an Event on REF and wait until it is written or given up. Never raises; aggregated, rate-limited."""
        try:
            future = self.submit(ref, reason, message, warning=warning, detail=detail)
            if future is not None:
                await asyncio.wrap_future(future)
        except Exception:  # the future carries no exceptions; this is a safety net
            log.debug("recording event %s failed", reason, exc_info=True)

    def submit(self, ref: ObjectRef, reason: Reason, message: str, *, warning: bool = False,
               detail: Reason | None = None) -> concurrent.futures.Future[None] | None:
        """Record without waiting (for hot paths and threads without a loop); the write's future, None if dropped.

        DETAIL, the specific reason under REASON, goes in the Event's ironlb.io/reason annotation and is part of
        the Event's identity: Events of one reason but different details are never combined into one."""
        etype = "Warning" if warning else "Normal"
        key = EventKey(f"{self.component}/{self.instance}",
                       (ref.api_version, ref.kind, ref.namespace or "", ref.name, ref.uid or ""), etype, reason.value,
                       detail.value if detail is not None else "")
        now, wall = self.clock(), time.time()
        with self._lock:
            decision = self._correlator.observe(key, ref.name, message, now)
            if decision.outcome is Outcome.DROPPED:
                self._stats[Outcome.DROPPED.value] += 1
                return None
            if not self._within_budget(reason.value, ref, decision, now):
                # Its count is in the correlator's cache: the next write that passes carries it.
                self._stats[Outcome.THROTTLED.value] += 1
                return None
            return self._enqueue(ref, key, decision, wall - (now - decision.first_seen), wall)

    def _within_budget(self, reason: str, ref: ObjectRef, decision: Correlation, now: float) -> bool:
        """Whether REASON's process-wide budget allows this write; called with the lock held."""
        bucket = self._budgets.get(reason)
        if bucket is None:
            return True
        if (ref.namespace or CLUSTER_SCOPED_NAMESPACE, decision.name) in self._pending:
            return True  # merged into a write already queued: no write more
        return bucket.take(now)

    def stats(self) -> dict[str, int]:
        """Counts so far: emitted, aggregated (patched), combined, dropped (spam filter), throttled (a reason's
        process-wide budget), failed."""
        with self._lock:
            return dict(self._stats)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is pending (waiting at most TIMEOUT seconds), then stop the writer thread."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
            writer = self._writer
        if writer is not None:
            writer.join(timeout)

    def _enqueue(self, ref: ObjectRef, key: EventKey, decision: Correlation, first_wall: float,
                 wall: float) -> concurrent.futures.Future[None] | None:
        """Queue (or merge into a queued) write for DECISION; called with the lock held."""
        namespace = ref.namespace or CLUSTER_SCOPED_NAMESPACE
        slot = (namespace, decision.name)
        pending = self._pending.get(slot)
        if pending is not None:  # not sent yet: send the newest count instead, in the same write
            pending.body.update(count=decision.count, lastTimestamp=_timestamp(wall), message=decision.message)
            pending.outcomes.append(decision.outcome)
            return pending.future
        if len(self._pending) >= self.max_pending or self._closed:
            self._stats["failed"] += 1
            return None
        involved = {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name}
        involved.update({k: v for k, v in (("namespace", ref.namespace), ("uid", ref.uid)) if v})
        metadata: dict[str, Any] = {"name": decision.name, "namespace": namespace}
        if key.detail:
            metadata["annotations"] = {EVENT_REASON: key.detail}
        body = {
            "metadata": metadata, "involvedObject": involved,
            "reason": key.reason, "message": decision.message, "type": key.type, "count": decision.count,
            "firstTimestamp": _timestamp(first_wall), "lastTimestamp": _timestamp(wall),
            "source": {"component": self.component, "host": self.instance},
            "reportingComponent": self.component, "reportingInstance": self.instance,
        }
        write = _Write(namespace, body, decision.create, [decision.outcome])
        self._pending[slot] = write
        if self._writer is None:
            self._writer = threading.Thread(target=self._run, name="events", daemon=True)
            self._writer.start()
        self._wake.notify()
        return write.future

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending:
                    return
                _, write = self._pending.popitem(last=False)
            ok = self._send(write)
            with self._lock:
                for outcome in write.outcomes:
                    self._stats[outcome.value if ok else "failed"] += 1
            write.future.set_result(None)

    def _send(self, write: _Write) -> bool:
        """One API write (a create, or a patch falling back to a create); False if it failed."""
        body = write.body
        try:
            if not write.create:
                try:
                    patch = {k: body[k] for k in ("count", "lastTimestamp", "message")}
                    self.sink.patch(write.namespace, body["metadata"]["name"], patch)
                    return True
                except EventNotFound:
                    pass  # expired or never written: create it, with the count so far
            self.sink.create(write.namespace, body)
            return True
        except Exception as exc:
            if (suppressed := self._failure_log.allow(body["reason"])) is not None:
                log.warning("could not record event %s on %s %s: %s (%d more failures not logged)", body["reason"],
                            body["involvedObject"]["kind"], body["involvedObject"]["name"],
                            getattr(exc, "reason", None) or exc, suppressed)
            return False
