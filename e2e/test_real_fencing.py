"""Self-fencing on real nodes, from what the cluster writes anyway: the kubelets' node Leases, the speaker Pods'
status, and the HearsPeers condition each speaker sets on its own Pod when it changes. Nothing of IronLB's is
renewed on a timer: idle, IronLB's only writes are the operator's Lease renewals."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks._apiwrites import idle_writes
from e2e.lab import lab, netns, reallab
from e2e.lab.config import node_named
from e2e.test_real_nodes import hears_peers, metrics_token, pods
from e2e.test_speaker_resilience import heartbeats_blocked
from e2e.testkit import nodedeath
from e2e.testkit.testing import Kube, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.kubelet]
NODES = ["node-1", "node-2", "node-3"]
NS = reallab.NAMESPACE


@pytest.fixture(scope="module")
def real() -> Iterator[Kube]:
    """A lab of three real nodes with IronLB installed by helm (reused if one runs); taken down afterwards."""
    try:
        yield nodedeath.real_lab(len(NODES))
    finally:
        lab.down()


@pytest.fixture(scope="module")
def token(real: Kube) -> str:
    """A token that may read the speakers' /metrics (the chart's metrics-reader role)."""
    return metrics_token(real)


def fenced(node: str, token: str) -> str | None:
    """The reason NODE's speaker gives for being fenced, or None while it answers."""
    n = node_named(node)
    text = netns.run_in(n.netns, ["curl", "-sf", "-m", "2", "-H", f"Authorization: Bearer {token}",
                                  f"http://{n.ipv4}:7473/metrics"], check=False).stdout
    match = re.search(r'^ironlb_speaker_fenced\{reason="([^"]+)"\} 1\.0$', text, re.MULTILINE)
    return match.group(1) if match else None


def speaker_pod(kube: Kube, node: str) -> dict[str, Any]:
    """NODE's speaker Pod."""
    (pod,) = [p for p in pods(kube, "speaker") if p["spec"]["nodeName"] == node]
    return pod


def renewal(kube: Kube, node: str) -> str:
    """NODE's kubelet Lease renewal time."""
    return kube.get("lease", node, "kube-node-lease")["spec"]["renewTime"]


def speaker_state(kube: Kube, node: str) -> tuple[bool, int]:
    """NODE's speaker container: (running, restart count), as its kubelet reports it."""
    (status,) = speaker_pod(kube, node)["status"]["containerStatuses"]
    return "running" in status["state"], status["restartCount"]


def crash_into_backoff(kube: Kube, nodes: list[str], crashes: int = 4) -> None:
    """SIGKILL the speaker container of each of NODES every time its kubelet restarts it, CRASHES times, so the
    kubelet's back-off keeps it down for a while after the last one (a crash loop on a live node)."""
    for _ in range(crashes):
        wait_for(lambda: all(speaker_state(kube, n)[0] for n in nodes), timeout=120, interval=0.2,
                 what="the speakers restarted")
        before = {n: speaker_state(kube, n)[1] for n in nodes}
        for n in nodes:
            os.kill(reallab.container_pid(speaker_pod(kube, n), "speaker"), signal.SIGKILL)
        wait_for(lambda b=before: all(speaker_state(kube, n) != (True, b[n]) for n in nodes), timeout=30,
                 interval=0.2, what="the kubelets saw the crashes")


def all_hear_each_other(kube: Kube) -> bool:
    """Every speaker Pod Ready and saying it hears peers."""
    found = pods(kube, "speaker")
    return len(found) == len(NODES) and all(reallab.pod_ready(p) and hears_peers(p) == "True" for p in found)


def settled(kube: Kube, timeout: float = 60) -> None:
    """Wait until every speaker hears every peer and says so; on a time-out, show the Pods' conditions and the
    speakers' last log lines."""
    try:
        wait_for(lambda: all_hear_each_other(kube), timeout=timeout, what="every speaker hears every peer")
    except AssertionError:
        for pod in pods(kube, "speaker"):
            print(pod["metadata"]["name"], json.dumps(pod["status"].get("conditions")))
            print(kube.kubectl("logs", "-n", NS, pod["metadata"]["name"], "--tail", "25", check=False).stdout)
        raise


def test_each_speaker_says_on_its_own_pod_that_it_hears_peers(real: Kube) -> None:
    """Through the chart's admission policy (the token names the Pod), once per change, never periodically."""
    real.kubectl("get", "validatingadmissionpolicy", "ironlb-speaker-pod-status", "ironlb-speaker-service-status")
    settled(real)
    assert not real.kubectl("get", "configmap", "-n", NS, "-o", "name").stdout.count("presence")


@pytest.mark.long  # a minute of idle counting; `make test` keeps the fencing tests around it
def test_idle_ironlb_writes_only_the_operators_lease(real: Kube) -> None:
    """Idle, settled: IronLB's writes per minute, counted from the API server's audit log by user agent."""
    settled(real)
    time.sleep(10)
    out = idle_writes(60.0)
    print(f"idle IronLB writes at {len(NODES)} nodes: {json.dumps(out)}")
    assert set(out["api_writes_idle_by_resource"]) <= {"update leases"}, out
    assert out["api_writes_per_min_idle"] <= 35, out


def test_a_node_cut_from_its_peers_fences_on_their_node_leases(real: Kube, token: str) -> None:
    """node-1 hears no peer but reaches the API: node-2 and node-3 run, hear each other and their kubelets renew
    their Leases, so a group lives on without node-1 and it stops answering. Heals when heartbeats flow again."""
    settled(real)
    started = time.monotonic()
    with heartbeats_blocked(real, "node-1"):
        # At the first Lease renewal of a peer after node-1's first probe: within one kubelet renewal interval.
        reason = wait_for(lambda: fenced("node-1", token), timeout=25, interval=0.2, what="node-1 fenced")
        print(f"node-1 fenced ({reason}) {time.monotonic() - started:.1f} s after its heartbeats were cut")
        assert reason == "fence-peers-alive"
        assert fenced("node-2", token) is None and fenced("node-3", token) is None
        assert hears_peers(speaker_pod(real, "node-1")) == "False"  # it said so on its Pod, for the others
    wait_for(lambda: fenced("node-1", token) is None, timeout=40, what="node-1 unfenced after heal")
    settled(real)


@pytest.mark.long  # crash loops into kubelet's backoff; `make test` keeps the fencing on node Leases above
def test_crashed_speakers_on_live_nodes_are_no_live_peers(real: Kube, token: str) -> None:
    """node-2's and node-3's speakers crash in a loop while their kubelets keep renewing the node Leases: node-1
    hears nobody and, the speakers' Pods not Ready, finds no live peer. It is the last survivor and answers."""
    peers = ["node-2", "node-3"]
    settled(real)
    crash_into_backoff(real, peers)
    wait_for(lambda: not any(reallab.pod_ready(speaker_pod(real, n)) for n in peers), timeout=30,
             what="the kubelets report the crashed speakers not Ready")
    renewed = {n: renewal(real, n) for n in peers}
    down_since = time.monotonic()
    wait_for(lambda: fenced("node-1", token) is None, timeout=5, interval=0.2, what="node-1 answering")
    seen = []
    while not any(speaker_state(real, n)[0] for n in peers) and time.monotonic() - down_since < 60:
        seen.append(fenced("node-1", token))
        time.sleep(0.5)
    down_s = time.monotonic() - down_since
    print(f"speakers down {down_s:.1f} s; node-1 fenced reasons {set(seen)}; Leases {renewed} -> "
          f"{ {n: renewal(real, n) for n in peers} }")
    assert down_s > 12, "the back-off was too short to cover a kubelet Lease renewal"
    assert all(renewal(real, n) != renewed[n] for n in peers), "the peers' nodes renewed their Leases"
    assert seen == [None] * len(seen), seen
    settled(real, timeout=180)
