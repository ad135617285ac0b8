"""The announce gate's adapter against a fake kube-proxy metrics page on 127.0.0.1: holds, polling only while
something is held, releases by reason, and L2's per-IP question."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest

from ironlb.api.reasons import AnnounceGateReason
from ironlb.core.announce_gate import KubeProxyReading
from ironlb.speaker.control.announcegate import AnnounceGate, changed_service
from ironlb.speaker.control.kubeproxy import read_kube_proxy, sync_times
from ironlb.speaker.control.metrics import _announce_gate
from ironlb.speaker.state.desired import ALL_INTERFACES, AnnounceReason
from ironlb.speaker.state.ranking import Ranked

R = AnnounceGateReason
IP = "203.0.113.1"
POLL = 0.02


def page(queued: float, synced: float, family: str = "IPv4") -> str:
    """kube-proxy's two sync series for FAMILY, as its metrics page prints them."""
    return (f'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{{ip_family="{family}"}} {queued!r}\n'
            f'kubeproxy_sync_proxy_rules_last_timestamp_seconds{{ip_family="{family}"}} {synced!r}\n')


class Gate(AnnounceGate):
    """The gate, counting its reads and its wake-ups."""

    def __init__(self, url: str, bound: float = 5.0) -> None:
        self.reads, self.woken = 0, asyncio.Event()
        super().__init__(url, bound, self.woken.set, poll=POLL, read=self._counted)
        self.armed = True

    def _counted(self, url: str) -> KubeProxyReading:
        self.reads += 1
        return read_kube_proxy(url, timeout=0.5)


@pytest.fixture
async def stale(metrics_server: tuple[str, list[str]]) -> AsyncIterator[tuple[Gate, list[str]]]:
    """A gate whose kube-proxy last synced a minute ago, and the page to change."""
    url, text = metrics_server
    text[0] = page(time.time() - 60, time.time() - 59)
    gate = Gate(url)
    yield gate, text
    await gate.close()


def test_the_page_is_read_per_family() -> None:
    times = sync_times(page(1.5, 2.5) + page(3.0, 2.0, "IPv6") + "process_cpu_seconds_total 3\n")
    assert {f: (s.queued, s.synced) for f, s in times.items()} == {"IPv4": (1.5, 2.5), "IPv6": (3.0, 2.0)}


async def test_a_new_announcement_waits_for_kube_proxys_sync(stale: tuple[Gate, list[str]]) -> None:
    gate, text = stale
    gate.saw_change("ns/a")
    assert gate.may_announce("ns/a", [IP]) is False and set(gate.held) == {"ns/a"} and gate.holds == 1
    await asyncio.sleep(10 * POLL)
    assert not gate.woken.is_set() and gate.reads > 1  # still waiting, reading meanwhile
    text[0] = page(time.time(), time.time() + 0.01)  # kube-proxy got a change and wrote its rules
    await asyncio.wait_for(gate.woken.wait(), 2)
    assert gate.take_released() == {"ns/a"} and gate.take_released() == set()
    assert gate.may_announce("ns/a", [IP]) is True and gate.held == {}
    assert gate.releases == {R.KUBE_PROXY_SYNCED: 1} and 0 < gate.last_wait < 2
    await asyncio.sleep(5 * POLL)
    reads = gate.reads
    await asyncio.sleep(5 * POLL)
    assert gate.reads == reads  # nothing held: kube-proxy is not read


async def test_no_recent_change_goes_at_once_without_a_read(stale: tuple[Gate, list[str]]) -> None:
    gate, _ = stale
    assert gate.may_announce("ns/a", [IP]) is True
    gate.armed = False  # before the speaker joined: its first list is no change
    gate.saw_change("ns/b")
    assert gate.may_announce("ns/b", [IP]) is True
    await asyncio.sleep(3 * POLL)
    assert gate.reads == 0 and gate.holds == 0


async def test_a_release_is_once_per_change(stale: tuple[Gate, list[str]]) -> None:
    gate, text = stale
    gate.saw_change("ns/a")
    assert not gate.may_announce("ns/a", [IP])
    text[0] = page(time.time(), time.time() + 0.01)
    await asyncio.wait_for(gate.woken.wait(), 2)
    text[0] = page(time.time() + 0.02, time.time())  # another change queued: kube-proxy is busy again
    await asyncio.sleep(3 * POLL)
    assert gate.may_announce("ns/a", [IP]) is True  # released for its change, not held again
    gate.saw_change("ns/a")  # a new change: asked again
    assert gate.may_announce("ns/a", [IP]) is False and gate.holds == 2


@pytest.mark.parametrize(("url", "text", "bound", "reason"), [
    ("http://127.0.0.1:1/metrics", None, 5.0, R.KUBE_PROXY_UNREADABLE),  # nothing listens there
    (None, "process_cpu_seconds_total 3\n", 5.0, R.KUBE_PROXY_ABSENT),  # some other program's metrics
    (None, None, 0.3, R.BOUND_PASSED),  # kube-proxy never syncs: the bound, once
])
async def test_without_kube_proxys_sync_the_wait_is_short_and_bounded(
        metrics_server: tuple[str, list[str]], url: str | None, text: str | None, bound: float,
        reason: AnnounceGateReason) -> None:
    served, shown = metrics_server
    shown[0] = text if text is not None else page(time.time() - 60, time.time() - 59)
    gate = Gate(url or served, bound)
    gate.saw_change("ns/a")
    started = time.monotonic()
    assert gate.may_announce("ns/a", [IP]) is False
    await asyncio.wait_for(gate.woken.wait(), 3)
    assert time.monotonic() - started < bound + 1.0
    assert gate.take_released() == {"ns/a"} and gate.may_announce("ns/a", [IP]) is True
    assert gate.releases == {reason: 1}
    await gate.close()


async def test_an_empty_url_or_a_zero_bound_never_holds() -> None:
    for gate in (AnnounceGate("", 3.0, lambda: None), AnnounceGate("http://127.0.0.1:1/", 0.0, lambda: None)):
        gate.armed = True
        gate.saw_change("ns/a")
        assert gate.may_announce("ns/a", [IP]) is True and not gate.held


async def test_l2_asks_for_every_service_of_the_ip_that_ranks_this_node(stale: tuple[Gate, list[str]]) -> None:
    gate, _ = stale
    mine = Ranked("ns/a", IP, AnnounceReason.ANNOUNCING, ("n2", "n1"), (ALL_INTERFACES,))
    not_mine = Ranked("ns/b", IP, AnnounceReason.ANNOUNCING, ("n2", "n3"), (ALL_INTERFACES,))
    gate.saw_change("ns/b")
    assert gate.may_claim("n1", IP, (mine, not_mine)) is True  # ns/b does not rank n1: not asked
    gate.saw_change("ns/a")
    assert gate.may_claim("n1", IP, (mine, not_mine)) is False and set(gate.held) == {"ns/a"}


def test_which_service_an_event_is_about() -> None:
    assert changed_service("services", {"metadata": {"namespace": "ns", "name": "a"}}) == "ns/a"
    sliced = {"metadata": {"namespace": "ns", "name": "a-x1", "labels": {"kubernetes.io/service-name": "a"}}}
    assert changed_service("slices", sliced) == "ns/a"
    assert changed_service("slices", {"metadata": {"namespace": "ns", "name": "orphan"}}) is None
    assert changed_service("nodes", {"metadata": {"name": "n1"}}) is None


def _svc(ip: str | None, conditions: tuple[str, ...] = ()) -> dict[str, object]:
    status = {"conditions": [{"type": t, "status": "True"} for t in conditions]}
    if ip:
        status["loadBalancer"] = {"ingress": [{"ip": ip}]}
    return {"metadata": {"namespace": "ns", "name": "a", "resourceVersion": str(len(conditions))},
            "spec": {"type": "LoadBalancer", "ports": [{"protocol": "TCP", "port": 80, "nodePort": 30080}]},
            "status": status}


async def test_only_what_kube_proxy_programs_is_a_change(stale: tuple[Gate, list[str]]) -> None:
    """IronLB's own condition writes change nothing kube-proxy syncs: counted as changes, a held Service would
    wait for a kube-proxy queue that never comes, the whole bound."""
    gate, _ = stale
    gate.on_event("services", "ADDED", _svc(None))
    gate.on_event("services", "MODIFIED", _svc(IP))
    first = gate._changed["ns/a"]
    gate.on_event("services", "MODIFIED", _svc(IP, ("ironlb.io/Allocated",)))
    gate.on_event("services", "MODIFIED", _svc(IP, ("ironlb.io/Allocated", "ironlb.io/Announced")))
    assert gate._changed["ns/a"] == first
    sliced = {"metadata": {"namespace": "ns", "name": "a-x1", "labels": {"kubernetes.io/service-name": "a"}},
              "endpoints": [{"nodeName": "node-1"}]}
    time.sleep(0.01)
    gate.on_event("slices", "ADDED", sliced)
    assert gate._changed["ns/a"] > first
    again = gate._changed["ns/a"]
    gate.on_event("slices", "MODIFIED", {**sliced, "metadata": {**sliced["metadata"], "resourceVersion": "9"}})
    assert gate._changed["ns/a"] == again
    time.sleep(0.01)
    gate.on_event("slices", "DELETED", sliced)
    assert gate._changed["ns/a"] > again


async def test_the_metrics_count_holds_and_releases_by_reason(stale: tuple[Gate, list[str]]) -> None:
    gate, text = stale
    gate.saw_change("ns/a")
    gate.may_announce("ns/a", [IP])
    text[0] = page(time.time(), time.time() + 0.01)
    await asyncio.wait_for(gate.woken.wait(), 2)
    families = {f.name: f for f in _announce_gate(SimpleNamespace(gate=gate))}
    assert families["ironlb_speaker_announce_holds"].samples[0].value == 1
    released = {s.labels["reason"]: s.value for s in families["ironlb_speaker_announce_holds_released"].samples}
    assert released == {"KubeProxySynced": 1, "WaitBoundPassed": 0, "KubeProxyAbsent": 0, "KubeProxyUnreadable": 0}
    assert families["ironlb_speaker_announce_held_services"].samples[0].value == 0
