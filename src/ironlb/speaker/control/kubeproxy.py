"""This node's kube-proxy as its metrics page shows it: when each IP family last queued and finished a sync.

Read by the join gate (`join`: has kube-proxy synced at all?) and the announce gate (`announcegate`: has it
synced since a Service changed?). kube-proxy publishes, per IP family, `..._last_queued_timestamp_seconds`
when it receives a change and `..._last_timestamp_seconds` once a sync has written its rules, both wall-clock
seconds (core.announce_gate explains the comparison).
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

from ironlb.core.announce_gate import FamilySync, KubeProxyReading

KUBE_PROXY_METRICS_URL = "http://127.0.0.1:10249/metrics"
_SERIES = re.compile(r'^kubeproxy_sync_proxy_rules_last_(queued_)?timestamp_seconds\{[^}]*ip_family="(\w+)"[^}]*\}'
                     r"[ \t]+(\S+)", re.MULTILINE)


def sync_times(metrics_text: str) -> dict[str, FamilySync]:
    """kube-proxy's sync series by IP family, from its Prometheus page (families without either: absent)."""
    found: dict[str, dict[str, float]] = {}
    for queued, family, value in _SERIES.findall(metrics_text):
        try:
            found.setdefault(family, {})["queued" if queued else "synced"] = float(value)
        except ValueError:
            continue  # not a number: as if the series were not there
    return {family: FamilySync(**times) for family, times in found.items()}


def read_page(url: str, timeout: float = 1.0) -> str | None:
    """The page at URL (blocking); None when nothing answers or it fails."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None


def read_kube_proxy(url: str, timeout: float = 1.0) -> KubeProxyReading:
    """One reading of kube-proxy's sync times at URL (blocking), stamped with the wall clock it is taken at."""
    taken_at = time.time()  # before the read: a sync the page shows happened before it was served
    page = read_page(url, timeout)
    return KubeProxyReading(sync_times(page or ""), taken_at, readable=page is not None)
