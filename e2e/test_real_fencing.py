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
from contextlib import contextmanager
from pathlib import Path
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


@contextmanager
def speaker_frozen(kube: Kube, node: str) -> Iterator[None]:
    """SIGSTOP both processes of NODE's speaker (a hung speaker on a live node: its kubelet goes on)."""
    root = reallab.container_pid(speaker_pod(kube, node), "speaker")
    children = Path(f"/proc/{root}/task/{root}/children").read_text().split()
    pids = [root, *map(int, children)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def all_hear_each_other(kube: Kube) -> bool:
    """Every speaker Pod Ready and saying it hears peers."""
    found = pods(kube, "speaker")
    return len(found) == len(NODES) and all(reallab.pod_ready(p) and hears_peers(p) == "True" for p in found)


def test_each_speaker_says_on_its_own_pod_that_it_hears_peers(real: Kube) -> None:
    """Through the chart's admission policy (the token names the Pod), once per change, never periodically."""
    real.kubectl("get", "validatingadmissionpolicy", "ironlb-speaker-pod-status", "ironlb-speaker-service-status")
    wait_for(lambda: all_hear_each_other(real), timeout=60, what="HearsPeers on every speaker Pod")
    assert not real.kubectl("get", "configmap", "-n", NS, "-o", "name").stdout.count("presence")


def test_idle_ironlb_writes_only_the_operators_lease(real: Kube) -> None:
    """Idle, settled: IronLB's writes per minute, counted from the API server's audit log by user agent."""
    wait_for(lambda: all_hear_each_other(real), timeout=60, what="every speaker settled")
    time.sleep(10)
    out = idle_writes(60.0)
    print(f"idle IronLB writes at {len(NODES)} nodes: {json.dumps(out)}")
    assert set(out["api_writes_idle_by_resource"]) <= {"update leases"}, out
    assert out["api_writes_per_min_idle"] <= 35, out


def test_a_node_cut_from_its_peers_fences_on_their_node_leases(real: Kube, token: str) -> None:
    """node-1 hears no peer but reaches the API: node-2 and node-3 run, hear each other and their kubelets renew
    their Leases, so a group lives on without node-1 and it stops answering. Heals when heartbeats flow again."""
    wait_for(lambda: all_hear_each_other(real), timeout=60, what="every speaker hears every peer")
    started = time.monotonic()
    with heartbeats_blocked(real, "node-1"):
        # At the first Lease renewal of a peer after node-1's first probe: within one kubelet renewal interval.
        reason = wait_for(lambda: fenced("node-1", token), timeout=25, interval=0.2, what="node-1 fenced")
        print(f"node-1 fenced ({reason}) {time.monotonic() - started:.1f} s after its heartbeats were cut")
        assert reason == "fence-peers-alive"
        assert fenced("node-2", token) is None and fenced("node-3", token) is None
        assert hears_peers(speaker_pod(real, "node-1")) == "False"  # it said so on its Pod, for the others
    wait_for(lambda: fenced("node-1", token) is None, timeout=40, what="node-1 unfenced after heal")
    wait_for(lambda: all_hear_each_other(real), timeout=60, what="every speaker hears every peer again")


def test_hung_speakers_on_live_nodes_are_no_live_peers(real: Kube, token: str) -> None:
    """node-2's and node-3's speakers hang while their kubelets keep renewing the node Leases: once the kubelets
    report those speakers not Ready, node-1 (hearing nobody) is the last survivor and answers, Lease renewals of
    its peers' nodes notwithstanding."""
    wait_for(lambda: all_hear_each_other(real), timeout=60, what="every speaker hears every peer")
    with speaker_frozen(real, "node-2"), speaker_frozen(real, "node-3"):
        wait_for(lambda: not any(reallab.pod_ready(speaker_pod(real, n)) for n in ("node-2", "node-3")),
                 timeout=40, what="the kubelets report the hung speakers not Ready")
        renewed = {n: renewal(real, n) for n in ("node-2", "node-3")}
        # A proof taken while they still passed for running ends with the proof period at most.
        wait_for(lambda: fenced("node-1", token) is None, timeout=35, interval=0.5, what="node-1 answering")
        seen = []
        deadline = time.monotonic() + 15  # longer than a kubelet Lease renewal interval
        while time.monotonic() < deadline:
            seen.append(fenced("node-1", token))
            time.sleep(0.5)
        assert all(renewal(real, n) != renewed[n] for n in renewed), "the peers' nodes renewed their Leases"
        assert seen == [None] * len(seen), seen
    wait_for(lambda: all_hear_each_other(real), timeout=90, what="every speaker back")
