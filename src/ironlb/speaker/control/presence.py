"""Peers' presence, read from what the cluster writes anyway: the evidence self-fencing weighs when no peer is heard.

No speaker renews anything on a timer. A peer is present when three things hold:

- its node's Lease in `kube-node-lease` is renewed by the kubelet: the NODE is alive and reaches the
  API. Its `spec.renewTime` is the renewal token: fencing counts a peer alive when the token changes
  between two of its own probes, so no clock is compared between nodes;
- its speaker Pod runs: Ready, every container running, not being deleted (the kubelet writes these
  on change). A crashed or hung speaker on a live node renews nothing of its own, so without this a
  live node would pass for a live speaker;
- whether it hears other speakers: the Pod condition `ironlb.io/HearsPeers`, which each speaker sets
  on its own Pod only when that changes (starts or stops hearing peers), never periodically.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ironlb.api.reasons import ConditionType, PresenceReason
from ironlb.common.kubeapi import LEASES, PODS, ApiError, Client
from ironlb.common.throttle import Throttle

log = logging.getLogger(__name__)
NODE_LEASE_NAMESPACE = "kube-node-lease"
DEFAULT_SELECTOR = "app.kubernetes.io/component=speaker"
HEARS_PEERS = ConditionType.POD_HEARS_PEERS.value
TIMEOUT = (1.0, 2.0)  # (connect, read) seconds
MIN_WRITE_GAP_S = 1.0  # a flapping peer link costs at most one condition write per gap
RETRY_S = 5.0          # an unreachable API: the report is tried again this much later


class SpeakerPod(Enum):
    """What a speaker Pod's status says about the speaker in it."""

    RUNNING = "running"              # Ready, every container running
    NOT_READY = "not-ready"          # a container crashed, restarts, or fails its readiness probe
    TERMINATING = "terminating"      # being deleted
    UNSCHEDULED = "unscheduled"      # on no node yet


class Report(Enum):
    """What one report of our own presence came to."""

    CURRENT = "current"          # the condition already shows it (or we have no Pod to report on)
    WRITTEN = "written"
    REFUSED = "refused"          # the API answered no (no such Pod, forbidden): tried again at the next change
    UNREACHABLE = "unreachable"  # tried again after RETRY_S


@dataclass(frozen=True)
class Peer:
    """One node's evidence: its Lease's renewal token, its speaker, whether that speaker hears peers."""

    renewal: str
    speaker: SpeakerPod
    hears_peers: bool


def speaker_pod(pod: Mapping[str, Any]) -> SpeakerPod:
    """Does the speaker in POD run (as the kubelet last wrote its status)?"""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return SpeakerPod.TERMINATING
    if not pod.get("spec", {}).get("nodeName"):
        return SpeakerPod.UNSCHEDULED
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    containers = status.get("containerStatuses") or []
    running = bool(containers) and all("running" in (c.get("state") or {}) and c.get("ready") for c in containers)
    return SpeakerPod.RUNNING if ready and running and status.get("phase") == "Running" else SpeakerPod.NOT_READY


def hears_peers(pod: Mapping[str, Any]) -> bool:
    """Does the speaker in POD say it hears other speakers (its own condition)?"""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == HEARS_PEERS and c.get("status") == "True" for c in conditions)


def peers(leases: list[Mapping[str, Any]], pods: list[Mapping[str, Any]]) -> dict[str, Peer]:
    """Every node with both a renewed Lease and a speaker Pod, by node name (a running speaker wins
    over another Pod of the same node, e.g. one being replaced)."""
    renewals = {lease["metadata"]["name"]: str((lease.get("spec") or {}).get("renewTime") or "") for lease in leases}
    found: dict[str, Peer] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or not renewals.get(node):
            continue
        peer = Peer(renewals[node], speaker_pod(pod), hears_peers(pod))
        if node not in found or peer.speaker is SpeakerPod.RUNNING:
            found[node] = peer
    return found


def evidence(found: Mapping[str, Peer]) -> dict[str, tuple[str, int]]:
    """What fencing weighs: (renewal token, 1 if it hears peers else 0) for the nodes whose speaker runs."""
    return {node: (p.renewal, int(p.hears_peers)) for node, p in found.items() if p.speaker is SpeakerPod.RUNNING}


class Presence:
    """Reads the peers' presence; reports this speaker's own (the HearsPeers condition) when it changes."""

    def __init__(self, api: Client, namespace: str, pod: str, heard: Callable[[], int],
                 selector: str = DEFAULT_SELECTOR, lease_namespace: str = NODE_LEASE_NAMESPACE) -> None:
        self.api, self.namespace, self.pod, self.heard = api, namespace, pod, heard
        self.selector, self.lease_namespace = selector, lease_namespace
        self.reported: bool | None = None  # the value our Pod's condition last took
        self.writes = self.failures = 0
        self._nudge = asyncio.Event()
        self._errors = Throttle(60.0)

    def nudge(self) -> None:
        """The heard count may have gone from none to some, or back: report it if it changed."""
        self._nudge.set()

    def read(self) -> dict[str, tuple[str, int]]:
        """Every peer whose speaker runs, as (renewal token, hears peers) (blocking; raises when the API
        cannot be reached)."""
        leases = self.api.list(LEASES, self.lease_namespace, timeout=TIMEOUT).get("items") or []
        pods = self.api.list(PODS, self.namespace, labelSelector=self.selector, timeout=TIMEOUT).get("items") or []
        return evidence(peers(leases, pods))

    def report(self) -> Report:
        """Set our Pod's HearsPeers condition if it changed (blocking)."""
        hears = self.heard() > 0
        if not self.pod or hears == self.reported:
            return Report.CURRENT
        condition = {"type": HEARS_PEERS, "status": "True" if hears else "False",
                     "reason": (PresenceReason.PEERS_HEARD if hears else PresenceReason.NO_PEER_HEARD).value,
                     "lastTransitionTime": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        try:
            self.api.patch(PODS, self.pod, {"status": {"conditions": [condition]}}, self.namespace,
                           subresource="status", timeout=TIMEOUT)
        except ApiError as exc:
            self._failed(f"{exc.status} {exc.reason}")
            return Report.UNREACHABLE if exc.status >= 500 else Report.REFUSED
        except Exception as exc:  # timeouts, refused connections, resets: the API is out of reach
            self._failed(type(exc).__name__)
            return Report.UNREACHABLE
        self.reported = hears
        self.writes += 1
        return Report.WRITTEN

    def _failed(self, why: str) -> None:
        self.failures += 1
        if self._errors.allow("report") is not None:
            log.warning("cannot set %s on Pod %s/%s (%s)", HEARS_PEERS, self.namespace, self.pod, why)

    async def run(self) -> None:
        """Report now, then on every nudge, at most once per MIN_WRITE_GAP_S, until cancelled."""
        self._nudge.set()  # a speaker that hears peers from its first step is never nudged for it
        while True:
            await self._nudge.wait()
            self._nudge.clear()
            if await asyncio.to_thread(self.report) is Report.UNREACHABLE:
                asyncio.get_running_loop().call_later(RETRY_S, self._nudge.set)
            await asyncio.sleep(MIN_WRITE_GAP_S)
