"""When a starting speaker joins: kube-proxy's sync metrics read, the bounded wait, and the alive set."""

from __future__ import annotations

import asyncio

import pytest

from ironlb.speaker.control.join import JoinReason, KubeProxyState, fetch_state, kube_proxy_state, wait_for_kube_proxy
from ironlb.speaker.fast.liveness.membership import Membership

QUEUED = 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{{ip_family="{}"}} 1.79e+09\n'
SYNCED = 'kubeproxy_sync_proxy_rules_last_timestamp_seconds{{ip_family="{}"}} 1.79e+09\n'
HELP = "# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds [ALPHA] The last time proxy rules were synced\n"


@pytest.mark.parametrize(("page", "state"), [
    (HELP + QUEUED.format("IPv4") + QUEUED.format("IPv6"), KubeProxyState.NOT_SYNCED),  # started, none synced
    (QUEUED.format("IPv4") + QUEUED.format("IPv6") + SYNCED.format("IPv4"), KubeProxyState.NOT_SYNCED),
    (QUEUED.format("IPv4") + QUEUED.format("IPv6") + SYNCED.format("IPv6") + SYNCED.format("IPv4"),
     KubeProxyState.SYNCED),
    (QUEUED.format("IPv4") + SYNCED.format("IPv4"), KubeProxyState.SYNCED),  # single-stack
    (SYNCED.format("IPv4"), KubeProxyState.SYNCED),
    (HELP + "process_cpu_seconds_total 3.2\n", KubeProxyState.NO_SYNC_METRICS),  # not kube-proxy
    ("", KubeProxyState.NO_SYNC_METRICS),
])
def test_kube_proxy_state_from_its_metrics(page: str, state: KubeProxyState) -> None:
    assert kube_proxy_state(page) is state


async def test_waits_until_every_family_has_synced(metrics_server: tuple[str, list[str]]) -> None:
    url, page = metrics_server
    page[0] = QUEUED.format("IPv4") + QUEUED.format("IPv6") + SYNCED.format("IPv4")
    waiting = asyncio.create_task(wait_for_kube_proxy(url, bound=10, poll=0.02))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    page[0] += SYNCED.format("IPv6")
    assert await asyncio.wait_for(waiting, 2) is JoinReason.KUBE_PROXY_SYNCED


async def test_gives_up_after_the_bound_and_can_be_turned_off(metrics_server: tuple[str, list[str]]) -> None:
    url, page = metrics_server
    page[0] = "process_cpu_seconds_total 3.2\n"
    assert await wait_for_kube_proxy(url, bound=0.2, poll=0.02) is JoinReason.GAVE_UP_WAITING
    assert await wait_for_kube_proxy("", bound=10) is JoinReason.WAIT_DISABLED


def test_fetch_reads_the_page_or_says_unreachable(metrics_server: tuple[str, list[str]]) -> None:
    url, page = metrics_server
    page[0] = SYNCED.format("IPv4")
    assert fetch_state(url) is KubeProxyState.SYNCED
    assert fetch_state("http://127.0.0.1:1/metrics", timeout=0.5) is KubeProxyState.UNREACHABLE


def test_a_node_not_yet_joined_does_not_count_itself() -> None:
    m = Membership(me="n1", started=0.0, counts_self=False)
    m.set_expected({"n1", "n2"})
    assert m.alive() == {"n2"}  # n2 is within its grace period
    m.counts_self = True
    assert m.alive() == {"n1", "n2"}
