"""When a starting speaker joins the election: once this node's kube-proxy has programmed its rules.

A node that comes back (reboot, restart, healed partition) wins back the IPs it hashes to as soon as
its peers hear its heartbeats. If its kube-proxy has not finished its first sync by then, the
traffic it attracts is dropped. kube-proxy's /healthz answers 200 while it starts up, so it cannot
tell; its metrics can: `kubeproxy_sync_proxy_rules_last_timestamp_seconds` appears per IP family
only after a successful sync. The speaker stays silent (no heartbeats, not counted as alive) until
every family kube-proxy runs has synced, or a bound passes (kube-proxy absent, or its metrics
elsewhere), and says which in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from enum import Enum

from ironlb.speaker.control.kubeproxy import KUBE_PROXY_METRICS_URL, read_page, sync_times

__all__ = ["KUBE_PROXY_METRICS_URL", "JoinReason", "KubeProxyState", "fetch_state", "kube_proxy_state",
           "wait_for_kube_proxy"]
log = logging.getLogger(__name__)


class KubeProxyState(Enum):
    """What kube-proxy's metrics say about its rules."""

    SYNCED = "synced"              # every IP family it runs has written its rules at least once
    NOT_SYNCED = "not-synced"      # it runs, but some family has not synced yet
    NO_SYNC_METRICS = "no-sync-metrics"  # the page has no sync series (not kube-proxy, or too old)
    UNREACHABLE = "unreachable"    # nothing answered at the metrics URL


class JoinReason(Enum):
    """Why the speaker joined when it did."""

    KUBE_PROXY_SYNCED = "kube-proxy-synced"
    WAIT_DISABLED = "wait-disabled"
    GAVE_UP_WAITING = "gave-up-waiting"


def kube_proxy_state(metrics_text: str) -> KubeProxyState:
    """Read kube-proxy's Prometheus page: have all its IP families synced?"""
    families = sync_times(metrics_text)
    started = {family for family, sync in families.items() if sync.queued is not None}
    synced = {family for family, sync in families.items() if sync.synced is not None}
    if not started and not synced:
        return KubeProxyState.NO_SYNC_METRICS
    return KubeProxyState.SYNCED if synced and started <= synced else KubeProxyState.NOT_SYNCED


def fetch_state(url: str, timeout: float = 1.0) -> KubeProxyState:
    """Fetch URL and read it (blocking)."""
    page = read_page(url, timeout)
    return KubeProxyState.UNREACHABLE if page is None else kube_proxy_state(page)


async def wait_for_kube_proxy(url: str, bound: float, poll: float = 0.2) -> JoinReason:
    """Return once kube-proxy at URL has synced, or after BOUND seconds; '' as URL: at once."""
    if not url:
        return JoinReason.WAIT_DISABLED
    deadline = time.monotonic() + bound
    state = KubeProxyState.UNREACHABLE
    while time.monotonic() < deadline:
        state = await asyncio.to_thread(fetch_state, url)
        if state is KubeProxyState.SYNCED:
            return JoinReason.KUBE_PROXY_SYNCED
        await asyncio.sleep(poll)
    log.warning("kube-proxy at %s still %s after %.0f s; joining anyway (set --kube-proxy-metrics-url '' "
                "where kube-proxy does not run)", url, state.value, bound)
    return JoinReason.GAVE_UP_WAITING
