"""One active operator: a coordination.k8s.io Lease held by the leader and renewed in the background."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from enum import Enum

from kubernetes import client
from kubernetes.client.rest import ApiException

log = logging.getLogger(__name__)


class LeaseDecision(Enum):
    """Why a try to take or keep the Lease came out as it did."""

    ACQUIRED = "acquired"
    RENEWED = "renewed"
    HELD_BY_OTHER = "held-by-other"
    CONFLICT = "conflict"
    API_ERROR = "api-error"


@dataclass(frozen=True)
class LeaseConfig:
    """Where the Lease lives and its timings."""

    namespace: str
    name: str = "ironlb-operator"
    duration_s: float = 15.0
    retry_s: float = 2.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def expired(spec: client.V1LeaseSpec, now: dt.datetime) -> bool:
    """True when the holder stopped renewing longer than its lease duration ago."""
    if not spec or not spec.holder_identity or not spec.renew_time:
        return True
    renew = spec.renew_time if spec.renew_time.tzinfo else spec.renew_time.replace(tzinfo=dt.UTC)
    return renew + dt.timedelta(seconds=spec.lease_duration_seconds or 0) < now


class LeaderLease:
    """Takes and keeps one Lease for `identity`; the caller stops work when it is lost."""

    def __init__(self, api: client.CoordinationV1Api, config: LeaseConfig, identity: str) -> None:
        self.api, self.config, self.identity = api, config, identity
        self.acquired_at: dt.datetime | None = None

    def _spec(self, transitions: int, acquire_time: dt.datetime | None) -> client.V1LeaseSpec:
        now = _now()
        return client.V1LeaseSpec(
            holder_identity=self.identity, lease_duration_seconds=max(1, round(self.config.duration_s)),
            acquire_time=acquire_time or now, renew_time=now, lease_transitions=transitions)

    def try_once(self) -> LeaseDecision:
        """One attempt to acquire or renew (blocking API calls)."""
        cfg = self.config
        try:
            lease = self.api.read_namespaced_lease(cfg.name, cfg.namespace)
        except ApiException as exc:
            if exc.status != 404:
                return LeaseDecision.API_ERROR
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=cfg.name, namespace=cfg.namespace),
                                  spec=self._spec(0, None))
            try:
                self.api.create_namespaced_lease(cfg.namespace, body)
            except ApiException as exc2:
                return LeaseDecision.CONFLICT if exc2.status == 409 else LeaseDecision.API_ERROR
            return LeaseDecision.ACQUIRED
        spec = lease.spec or client.V1LeaseSpec()
        ours = spec.holder_identity == self.identity
        if not ours and not expired(spec, _now()):
            return LeaseDecision.HELD_BY_OTHER
        transitions = (spec.lease_transitions or 0) + (0 if ours else 1)
        lease.spec = self._spec(transitions, spec.acquire_time if ours else None)
        try:
            # resourceVersion in the body makes this a compare-and-swap: two standbys never both win.
            self.api.replace_namespaced_lease(cfg.name, cfg.namespace, lease)
        except ApiException as exc:
            return LeaseDecision.CONFLICT if exc.status == 409 else LeaseDecision.API_ERROR
        return LeaseDecision.RENEWED if ours else LeaseDecision.ACQUIRED

    async def acquire(self) -> None:
        """Wait until this replica holds the Lease."""
        while True:
            decision = await asyncio.to_thread(self.try_once)
            if decision in (LeaseDecision.ACQUIRED, LeaseDecision.RENEWED):
                self.acquired_at = _now()
                log.info("leader lease %s/%s acquired by %s", self.config.namespace, self.config.name,
                         self.identity)
                return
            log.info("waiting for leader lease (%s)", decision.value)
            await asyncio.sleep(self.config.retry_s)

    async def hold(self) -> None:
        """Renew until renewal fails for a whole lease duration; then return (leadership lost)."""
        interval = self.config.duration_s / 3
        last_ok = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(interval)
            decision = await asyncio.to_thread(self.try_once)
            now = asyncio.get_running_loop().time()
            if decision in (LeaseDecision.ACQUIRED, LeaseDecision.RENEWED):
                last_ok = now
            elif decision is LeaseDecision.HELD_BY_OTHER or now - last_ok > self.config.duration_s:
                log.error("leader lease lost (%s)", decision.value)
                return

    def release(self) -> None:
        """Give the Lease up on a clean shutdown so a standby takes over at once."""
        try:
            lease = self.api.read_namespaced_lease(self.config.name, self.config.namespace)
            if lease.spec and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                lease.spec.renew_time = None
                self.api.replace_namespaced_lease(self.config.name, self.config.namespace, lease)
        except ApiException:
            log.warning("could not release the leader lease", exc_info=True)
