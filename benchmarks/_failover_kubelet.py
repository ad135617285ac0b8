"""`benchmarks.failover --kubelet`: the announcing node's death as a client sees it, on real nodes.

The real-node lab (`up --kubelet`, 3 nodes, IronLB installed by the chart with its defaults), a Deployment with
a pod on every node and a LoadBalancer Service with the given externalTrafficPolicy. Nothing is drained before a
kill: the client's probe (`e2e.probes.connprobe`: new connections at 50 Hz with a 300 ms timeout, 4 long-lived
ones) runs from 2 s before the kill until the window (60 s by default) after it; then the node is revived and the
next trial waits until its pod answers through the VIP again.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from benchmarks._figures import percentile, report
from e2e.testkit import nodedeath
from e2e.testkit.connections import WINDOW_S, BreakCause, KillFigures, as_dict, figures
from e2e.testkit.testing import Kube

NAME = "bench-failover"
ADDRESSES = "198.51.100.240/29"
REVIVE_TIMEOUT_S = 180.0


def trial(kube: Kube, vip: str, policy: str, window: float) -> KillFigures:
    """One kill of the announcing node and its revive; the client's figures for it."""
    node = nodedeath.wait_serving(kube, NAME, vip, policy)
    pod = nodedeath.pods_by_node(kube, NAME)[node]
    try:
        recording, killed = nodedeath.record_kill(vip, node, after_s=window)
    finally:
        if nodedeath.revive(kube, node, vip, pod, timeout=REVIVE_TIMEOUT_S) is None:
            raise RuntimeError(f"{pod} did not answer through {vip} within {REVIVE_TIMEOUT_S} s of {node}'s revive")
    return figures(recording, killed, {pod}, window=window)


def mean_max(values: list[int]) -> dict[str, float]:
    """Mean and max of VALUES."""
    return {"mean": round(statistics.mean(values), 2), "max": max(values)}


def summary(trials: list[KillFigures], policy: str, window: float) -> dict[str, Any]:
    """The figures over every trial: p95s, and per kill mean and max. An all_connections_ok near WINDOW means
    connections still failed when the window closed."""
    moved = [t.vip_moved_s if t.vip_moved_s is not None else float("inf") for t in trials]
    return {
        "mode": "kubelet", "policy": policy, "trials": len(trials), "window_s": window,
        "vip_moved_p95_s": round(percentile(moved, 95), 3),
        "all_connections_ok_p95_s": round(percentile([t.all_connections_ok_s for t in trials], 95), 3),
        "failed_connections_per_kill": mean_max([t.failed_connections for t in trials]),
        "long_lived_broken_per_kill": {cause.value: mean_max([t.long_lived_broken[cause] for t in trials])
                                       for cause in BreakCause},
    }


def run(trials: int, policy: str, window: float = WINDOW_S) -> int:
    """Run the trials on the real-node lab, print a line per trial and the figures."""
    kube = nodedeath.real_lab()
    nodedeath.unserve(kube, NAME)
    vip = nodedeath.serve(kube, NAME, ADDRESSES, policy)
    results = []
    for i in range(trials):
        results.append(trial(kube, vip, policy, window))
        print(json.dumps({"trial": i + 1, **as_dict(results[-1])}), flush=True)
    nodedeath.unserve(kube, NAME)
    report(summary(results, policy, window))
    return 0
