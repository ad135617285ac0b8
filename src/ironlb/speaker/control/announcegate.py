"""The announce gate's adapter: new announcements of a Service that just changed wait for this node's kube-proxy.

The speaker tells the gate of every Service and EndpointSlice event once it has joined (`saw_change`), and asks
it before it newly announces a Service (`may_announce`: L2's claims in `fastproc`, BGP's routes in `bgpfeed`);
withdrawals never ask. The decision is core.announce_gate's. While something is held, and only then, the gate
reads kube-proxy's metrics every POLL_S; once a held Service may go, it wakes the speaker, whose next pass
takes it (`take_released`) and decides it again. Everything runs on the control plane's loop but the read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ironlb.api.reasons import AnnounceGateReason
from ironlb.core.announce_gate import KubeProxyReading, decide, family_of, released
from ironlb.speaker.control.kubeproxy import read_kube_proxy
from ironlb.speaker.state.cluster import SERVICE_NAME_LABEL
from ironlb.speaker.state.desired import AnnounceReason
from ironlb.speaker.state.ranking import Ranked

log = logging.getLogger(__name__)
POLL_S = 0.1  # how often kube-proxy's metrics are read while an announcement is held


class AnnounceGate:
    """Holds new announcements of recently changed Services until this node's kube-proxy has synced them."""

    def __init__(self, url: str, bound: float, wake: Callable[[], None], poll: float = POLL_S,
                 read: Callable[[str], KubeProxyReading] = read_kube_proxy,
                 clock: Callable[[], float] = time.time) -> None:
        self.url, self.bound, self.wake, self.poll = url, bound, wake, poll
        self._read, self._clock = read, clock  # the wall clock: kube-proxy's timestamps are on it
        self.enabled = bool(url) and bound > 0
        self.armed = False  # the speaker's first list is not a change: the join gate waited for kube-proxy
        self._changed: OrderedDict[str, float] = OrderedDict()  # Service key -> its last change, oldest first
        self.held: dict[str, tuple[frozenset[str], float]] = {}  # Service key -> (IP families, held since)
        self._released: set[str] = set()  # released by the poller, for the next pass to decide again
        self._let_through: dict[str, float] = {}  # Service key -> the change it was released for (once per change)
        self.reading: KubeProxyReading | None = None  # the latest, read while something was held
        self.holds = 0  # holds begun
        self.releases: Counter[AnnounceGateReason] = Counter()  # holds ended, by reason
        self.last_wait = 0.0  # seconds the last released hold waited
        self._poller: asyncio.Task[None] | None = None
        self._views: dict[str, int] = {}  # kind/namespace/name -> what kube-proxy programs from it (a hash)

    def on_event(self, kind: str, event: str, obj: Mapping[str, Any]) -> None:
        """A Service or EndpointSlice event: a change only if it changes what kube-proxy programs from it."""
        if not (self.enabled and self.armed) or (key := changed_service(kind, obj)) is None:
            return
        meta = obj.get("metadata") or {}
        name = f"{kind}/{meta.get('namespace')}/{meta.get('name')}"
        view = kube_proxy_view(kind, obj)
        if event == "DELETED":
            self._views.pop(name, None)
        elif self._views.get(name) == view:
            return  # IronLB's own conditions, an annotation: kube-proxy queues no sync for them
        else:
            self._views[name] = view
        self.saw_change(key)

    def saw_change(self, key: str) -> None:
        """Service KEY or one of its EndpointSlices changed now."""
        if not (self.enabled and self.armed):
            return
        now = self._clock()
        self._changed.pop(key, None)
        self._let_through.pop(key, None)
        self._changed[key] = now
        while self._changed:  # the changes older than the bound are no recent change: forgotten
            oldest, at = next(iter(self._changed.items()))
            if now - at < self.bound:
                break
            del self._changed[oldest]
            self._let_through.pop(oldest, None)

    def may_announce(self, key: str, ips: Iterable[str]) -> bool:
        """Whether this node may newly announce Service KEY's IPS now; False holds them (the gate asks again)."""
        changed_at = self._changed.get(key)
        if not self.enabled or (changed_at is None and key not in self.held) or \
                (changed_at is not None and self._let_through.get(key) == changed_at):
            return True
        now = self._clock()
        families = frozenset(map(family_of, ips)) | (self.held[key][0] if key in self.held else frozenset())
        reason = decide(changed_at, now, families, self.reading, self.bound)
        if reason is AnnounceGateReason.WAITING:
            if key not in self.held:
                self.holds += 1
                log.debug("%s: new announcement held (%s)", key, reason.value)
            self.held[key] = (families, self.held[key][1] if key in self.held else now)
            self._poll_soon()
            return False
        if key in self.held:
            self._release(key, reason, now)
        return True

    def may_claim(self, me: str, ip: str, entries: Iterable[Ranked]) -> bool:
        """L2: whether node ME may take a first claim on IP, whose ENTRIES rank it (every Service that does may)."""
        keys = sorted({e.service for e in entries if e.reason is AnnounceReason.ANNOUNCING and me in e.ranking})
        return all([self.may_announce(key, (ip,)) for key in keys])  # a list: each Service held is polled for

    def take_released(self) -> set[str]:
        """The Services released since the last call, for the pass to decide again (then forgotten)."""
        keys, self._released = self._released, set()
        return keys

    def _release(self, key: str, reason: AnnounceGateReason, now: float) -> None:
        _, since = self.held.pop(key)
        if (changed_at := self._changed.get(key)) is not None:
            self._let_through[key] = changed_at
        reason = released(reason, was_held=True)
        self.releases[reason] += 1
        self.last_wait = max(0.0, now - since)
        level = logging.INFO if reason is AnnounceGateReason.BOUND_PASSED else logging.DEBUG
        log.log(level, "%s: announced after %.3f s held (%s)", key, self.last_wait, reason.value)

    def _poll_soon(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        """Read kube-proxy until nothing is held; release what may go, and wake the speaker for it."""
        while self.held:
            self.reading = await asyncio.to_thread(self._read, self.url)
            now = self._clock()
            for key, (families, _) in list(self.held.items()):
                reason = decide(self._changed.get(key), now, families, self.reading, self.bound)
                if reason is not AnnounceGateReason.WAITING:
                    self._release(key, reason, now)
                    self._released.add(key)
            if self._released:
                self.wake()
            if self.held:
                await asyncio.sleep(self.poll)

    async def close(self) -> None:
        """Stop reading kube-proxy."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller


def kube_proxy_view(kind: str, obj: Mapping[str, Any]) -> int:
    """A hash of what kube-proxy programs from OBJ, a Service or EndpointSlice as the speaker keeps it (slim.py):
    its spec and IPs, or its endpoints and ports; not its metadata, nor the conditions IronLB writes."""
    if kind == "services":
        seen: object = (obj.get("spec"), (obj.get("status") or {}).get("loadBalancer"))
    else:
        seen = {k: v for k, v in obj.items() if k != "metadata"}
    return hash(json.dumps(seen, sort_keys=True, default=str))


def changed_service(kind: str, obj: Mapping[str, Any]) -> str | None:
    """The Service key a Service or EndpointSlice event is about (None: another kind, or a slice of no Service)."""
    meta = obj.get("metadata") or {}
    if kind == "services":
        return f"{meta.get('namespace', '')}/{meta.get('name')}".lstrip("/")
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL) if kind == "slices" else None
    return f"{meta.get('namespace')}/{service}" if service else None
