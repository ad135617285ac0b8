"""One active operator: a coordination.k8s.io Lease held by the leader and renewed in the background.

Timings follow client-go's leaderelection: the leader renews every `retry_s` and gives up once it
has not renewed for `renew_deadline_s`, which is shorter than `duration_s`, the time a standby
waits before taking over. So the old leader has stopped writing (see `may_write`) before any
standby can start. A standby judges expiry by its own clock, from when it last saw the Lease
record change, not by the holder's renewTime: clocks of different nodes need not agree.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ironlb.common.kubeapi import LEASES, ApiError, Client

log = logging.getLogger(__name__)


class LeaseDecision(Enum):
    """Why a try to take or keep the Lease came out as it did."""

    ACQUIRED, RENEWED = "acquired", "renewed"  # held by this replica from here on
    HELD_BY_OTHER, CONFLICT, API_ERROR = "held-by-other", "conflict", "api-error"  # not held


HELD = (LeaseDecision.ACQUIRED, LeaseDecision.RENEWED)


@dataclass(frozen=True)
class LeaseConfig:
    """Where the Lease lives and its timings (seconds)."""

    namespace: str
    name: str = "ironlb-operator"
    duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_s: float = 2.0
    request_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_s < self.renew_deadline_s < self.duration_s:
            raise ValueError("lease timings need 0 < retry < renew deadline < duration "
                             f"(got {self.retry_s}, {self.renew_deadline_s}, {self.duration_s})")

    @classmethod
    def for_duration(cls, namespace: str, name: str, duration_s: float) -> LeaseConfig:
        """Timings in client-go's proportions (15 s : 10 s : 2 s) for a given duration."""
        return cls(namespace=namespace, name=name, duration_s=duration_s, renew_deadline_s=duration_s * 2 / 3,
                   retry_s=duration_s * 2 / 15, request_timeout_s=min(5.0, duration_s / 3))


def _now_micro() -> str:
    """The wall time as a Lease's MicroTime (RFC 3339, microseconds, UTC)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderLease:
    """Takes and keeps one Lease for `identity`; `may_write()` says whether leader writes may go out."""

    def __init__(self, kube: Client, config: LeaseConfig, identity: str,
                 clock: Callable[[], float] = time.monotonic, owner: tuple[dict[str, Any], ...] = ()) -> None:
        self.kube, self.config, self.identity, self.clock = kube, config, identity, clock
        self.owner = owner  # ownerReferences for a Lease we create (removed with the operator's Deployment)
        self.acquired_at: float | None = None
        self._renewed_at: float | None = None  # clock() when the last successful try *started*
        self._seen: tuple[Any, ...] | None = None  # the other holder's record as last read
        self._seen_at = 0.0

    def may_write(self) -> bool:
        """True while the last renewal is younger than the renew deadline (else: write nothing)."""
        return self._renewed_at is not None and self.clock() - self._renewed_at < self.config.renew_deadline_s

    def _spec(self, transitions: int, acquire_time: str | None) -> dict[str, Any]:
        now = _now_micro()
        return {"holderIdentity": self.identity, "leaseDurationSeconds": max(1, round(self.config.duration_s)),
                "acquireTime": acquire_time or now, "renewTime": now, "leaseTransitions": transitions}

    def try_once(self) -> LeaseDecision:
        """One attempt to acquire or renew (blocking API calls, each with a timeout)."""
        started = self.clock()
        decision = self._try()
        if decision in HELD:
            self._renewed_at = started
        return decision

    def _try(self) -> LeaseDecision:
        cfg, timeout = self.config, self.config.request_timeout_s
        try:
            lease = self.kube.get(LEASES, cfg.name, cfg.namespace, timeout=timeout)
        except ApiError as exc:
            return self._create() if exc.status == 404 else LeaseDecision.API_ERROR
        except Exception:  # timeouts and connection errors
            return LeaseDecision.API_ERROR
        spec = lease.get("spec") or {}
        ours = spec.get("holderIdentity") == self.identity
        if not ours and not self._expired(spec):
            return LeaseDecision.HELD_BY_OTHER
        transitions = (spec.get("leaseTransitions") or 0) + (0 if ours else 1)
        lease["spec"] = self._spec(transitions, spec.get("acquireTime") if ours else None)
        try:
            # resourceVersion in the body makes this a compare-and-swap: two standbys never both win.
            self.kube.replace(LEASES, cfg.name, lease, cfg.namespace, timeout=timeout)
        except ApiError as exc:
            return LeaseDecision.CONFLICT if exc.status == 409 else LeaseDecision.API_ERROR
        except Exception:
            return LeaseDecision.API_ERROR
        return LeaseDecision.RENEWED if ours else LeaseDecision.ACQUIRED

    def _create(self) -> LeaseDecision:
        cfg = self.config
        metadata: dict[str, Any] = {"name": cfg.name, "namespace": cfg.namespace}
        if self.owner:
            metadata["ownerReferences"] = list(self.owner)
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                "spec": self._spec(0, None)}
        try:
            self.kube.create(LEASES, body, cfg.namespace, timeout=cfg.request_timeout_s)
        except ApiError as exc:
            return LeaseDecision.CONFLICT if exc.status == 409 else LeaseDecision.API_ERROR
        except Exception:
            return LeaseDecision.API_ERROR
        return LeaseDecision.ACQUIRED

    def _expired(self, spec: dict[str, Any]) -> bool:
        """True when another holder's record has not changed for a whole duration, by our clock."""
        if not spec.get("holderIdentity"):
            return True  # released
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        now = self.clock()
        if record != self._seen:
            self._seen, self._seen_at = record, now
            return False
        duration = spec.get("leaseDurationSeconds") or self.config.duration_s
        return now - self._seen_at > duration

    async def acquire(self) -> None:
        """Wait until this replica holds the Lease."""
        while True:
            decision = await asyncio.to_thread(self.try_once)
            if decision in HELD:
                self.acquired_at = self.clock()
                log.info("leader lease %s/%s acquired by %s", self.config.namespace, self.config.name,
                         self.identity)
                return
            log.info("waiting for leader lease (%s)", decision.value)
            await asyncio.sleep(self.config.retry_s)

    async def hold(self) -> LeaseDecision:
        """Renew every retry period until renewal fails past the renew deadline, or another holds it."""
        while True:
            await asyncio.sleep(self.config.retry_s)
            decision = await asyncio.to_thread(self.try_once)
            if decision is LeaseDecision.HELD_BY_OTHER or not self.may_write():
                log.error("leader lease lost (%s)", decision.value)
                self._renewed_at = None
                return decision

    def release(self) -> None:
        """Give the Lease up on a clean shutdown so a standby takes over at once."""
        self._renewed_at = None  # nothing more is written from here on
        timeout = self.config.request_timeout_s
        try:
            lease = self.kube.get(LEASES, self.config.name, self.config.namespace, timeout=timeout)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") == self.identity:
                lease["spec"] = {k: v for k, v in spec.items() if k not in ("holderIdentity", "renewTime")}
                self.kube.replace(LEASES, self.config.name, lease, self.config.namespace, timeout=timeout)
        except Exception:
            log.warning("could not release the leader lease", exc_info=True)
