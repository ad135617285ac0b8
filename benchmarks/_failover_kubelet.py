"""`benchmarks.failover --kubelet`: the announcing node's death as a client sees it, on real nodes.

The real-node lab (`up --kubelet`, 3 nodes, IronLB installed by the chart with its defaults), a Deployment with
a pod on every node and a LoadBalancer Service with the given externalTrafficPolicy. Nothing is drained before a
kill: the client's probe (`e2e.probes.connprobe`: new connections at 50 Hz with a 300 ms timeout, 4 long-lived
ones) runs from 2 s before the kill until the window (60 s by default) after it; then the node is revived and the
next trial waits until its pod answers through the VIP again. Every trial starts from a fresh node state: the
conntrack entries toward the VIP are deleted on every node and the client first. `steering` installs the chart's
`speaker.steerAroundDeadNodes` first (`helm upgrade --reuse-values`, then the speakers' rollout).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import failover_plot
from benchmarks._figures import percentile, report
from e2e.lab import reallab
from e2e.lab.config import REPO
from e2e.testkit import changes, nodedeath
from e2e.testkit.connections import WINDOW_S, BreakCause, KillFigures, Recording, as_dict, figures
from e2e.testkit.testing import Kube

NAME = "bench-failover"
ADDRESSES = "198.51.100.240/29"
REVIVE_TIMEOUT_S = 180.0

Announcer = Callable[[Kube, str], str | None]  # the node announcing the Service NAME, if one is
Trial = tuple[KillFigures, dict[str, list[float]]]  # one kill's figures and its timeline


def timeline(rec: Recording, killed: float, window: float) -> dict[str, list[float]]:
    """When each new connection around the kill started, from the kill, answered and failed apart."""
    starts: dict[str, list[float]] = {"answered": [], "failed": []}
    for a in rec.attempts:
        if -failover_plot.BEFORE_S <= a.start - killed <= window:
            starts["answered" if a.ok else "failed"].append(round(a.start - killed, 3))
    return starts


def forget_vip_flows(kube: Kube, vip: str) -> None:
    """Delete the conntrack entries toward VIP on every node and the client, so a trial starts from a fresh node
    state: the previous kill left half-open ones toward the dead pod's old address (SYN_SENT, kept for minutes),
    and a new connection that reuses one's source port follows it to that address."""
    for where in (*kube.nodes, "client"):
        kube.exec(where, "conntrack", "-D", "-d", vip)


def trial(kube: Kube, vip: str, policy: str, window: float,
          announced: Announcer = nodedeath.announcer) -> Trial:
    """One kill of the announcing node (as ANNOUNCED names it) and its revive; the client's figures for it and
    its timeline."""
    forget_vip_flows(kube, vip)
    node = nodedeath.wait_serving(kube, NAME, vip, policy, announced=announced)
    pod = nodedeath.pods_by_node(kube, NAME)[node]
    try:
        recording, killed = nodedeath.record_kill(vip, node, after_s=window)
    finally:
        if nodedeath.revive(kube, node, vip, pod, timeout=REVIVE_TIMEOUT_S, policy=policy, app=NAME) is None:
            raise RuntimeError(f"{pod} was not back in service within {REVIVE_TIMEOUT_S} s of {node}'s revive")
    return figures(recording, killed, {pod}, window=window), timeline(recording, killed, window)


def set_steering(kube: Kube, on: bool) -> None:
    """Install the chart with `speaker.steerAroundDeadNodes` ON, keeping its other values, and wait until every
    speaker runs with it."""
    kube.helm("upgrade", reallab.RELEASE, str(REPO / "charts" / "ironlb"), "-n", reallab.NAMESPACE, "--reuse-values",
              "--set", f"speaker.steerAroundDeadNodes={str(on).lower()}")
    speaker = changes.ironlb_workload(kube, "daemonset")
    kube.kubectl("rollout", "status", f"daemonset/{speaker}", "-n", reallab.NAMESPACE, "--timeout=300s", timeout=330)
    reallab.wait_ironlb_ready(kube.bin_dir)


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


def measure(kube: Kube, vip: str, trials: int, policy: str, window: float,
            announced: Announcer = nodedeath.announcer, tag: str = "") -> list[Trial]:
    """TRIALS kills against the Service at VIP; print a line per trial (with TAG, if given)."""
    results = []
    for i in range(trials):
        kill_figures, kill_timeline = trial(kube, vip, policy, window, announced)
        results.append((kill_figures, kill_timeline))
        print(json.dumps({**({"balancer": tag} if tag else {}), "trial": i + 1, **as_dict(kill_figures)}),
              flush=True)
    return results


def saved_run(figures_all: dict[str, Any], results: list[Trial]) -> dict[str, Any]:
    """A run as --save writes it: its figures, and every trial's figures with its timeline."""
    return {**figures_all, "trials": [{**as_dict(f), "timeline": t} for f, t in results]}


def run(trials: int, policy: str, window: float = WINDOW_S, steering: bool = True, save: Path | None = None,
        plot: Path | None = None) -> int:
    """Run the trials on the real-node lab, print a line per trial and the figures; with SAVE, write them and
    every trial's timeline there; with PLOT, draw the first trial's timeline there."""
    kube = nodedeath.real_lab()
    set_steering(kube, steering)
    nodedeath.unserve(kube, NAME)
    vip = nodedeath.serve(kube, NAME, ADDRESSES, policy)
    results = measure(kube, vip, trials, policy, window)
    nodedeath.unserve(kube, NAME)
    figures_all = {**summary([f for f, _ in results], policy, window), "balancer": "ironlb", "steering": steering}
    saved = saved_run(figures_all, results)
    if save:
        save.write_text(json.dumps(saved))
    if plot:
        failover_plot.plot([saved], plot)
    report(figures_all)
    return 0
