"""`benchmarks.compare --kubelet`: the announcing node's death on real nodes, IronLB and then MetalLB, in one run.

The trials are `benchmarks.failover --kubelet`'s (benchmarks._failover_kubelet): the same Deployment with a pod
on every node, the same LoadBalancer Service (only its pool annotation differs), the same client probe, the same
hard kill and revive, every trial from a fresh node state. IronLB runs as `up --kubelet` installs it (the chart's
defaults, steering around dead nodes on); then its release is uninstalled and MetalLB v0.16.1 is installed from
its own manifest (e2e.lab.realmetallb) with a metallb.io IPAddressPool and L2Advertisement; afterwards MetalLB is
deleted and IronLB installed again, so the lab ends as it started. One load balancer runs at a time.

Figures, each as <figure>_ironlb, <figure>_metallb and <figure>_ratio (metallb ÷ ironlb: > 1 means IronLB is
ahead; none when IronLB's is 0): vip_moved_p95_s, all_connections_ok_p95_s, failed_connections_per_kill (the
mean over the kills); each side's whole summary besides. With --steering-off, IronLB with steering off (what
Kubernetes alone does with the dead node's endpoints) runs between the two, its figures as <figure>_ironlb_steering_off.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import failover_plot
from benchmarks._failover_kubelet import ADDRESSES, NAME, Trial, measure, saved_run, set_steering, summary
from benchmarks._figures import oriented_ratio, report
from e2e.lab import metallb, realmetallb
from e2e.testkit import nodedeath
from e2e.testkit.testing import Kube

BALANCERS = ("ironlb", "metallb")
STEERING_OFF = "ironlb_steering_off"  # IronLB with steering off: the endpoints as Kubernetes alone keeps them
FIGURES = ("vip_moved_p95_s", "all_connections_ok_p95_s", "failed_connections_per_kill")  # all costs


def side_figures(run_summary: dict[str, Any]) -> dict[str, float]:
    """One side's compared figures from its summary (failed connections: the mean per kill)."""
    return {"vip_moved_p95_s": run_summary["vip_moved_p95_s"],
            "all_connections_ok_p95_s": run_summary["all_connections_ok_p95_s"],
            "failed_connections_per_kill": run_summary["failed_connections_per_kill"]["mean"]}


def figures(summaries: dict[str, dict[str, Any]], version: str) -> dict[str, Any]:
    """Every compared figure for each side, the ratio of MetalLB's to IronLB's, and each side's summary."""
    sides = {name: side_figures(run_summary) for name, run_summary in summaries.items()}
    out: dict[str, Any] = {"mode": "kubelet", "metallb_version": version}
    for fig in FIGURES:
        for name, side in sides.items():
            out[f"{fig}_{name}"] = side[fig]
        out[f"{fig}_ratio"] = oriented_ratio(False, sides["ironlb"][fig], sides["metallb"][fig])
    for name, run_summary in summaries.items():
        out[f"summary_{name}"] = run_summary
    return out


def metallb_announcer(kube: Kube, service: str) -> str | None:
    """The node MetalLB announces SERVICE from."""
    return realmetallb.announcing_node(kube.bin_dir, service)


def ironlb_side(kube: Kube, trials: int, policy: str, window: float, steering: bool = True) -> list[Trial]:
    """The trials against IronLB as installed, with STEERING."""
    set_steering(kube, steering)
    nodedeath.unserve(kube, NAME)
    vip = nodedeath.serve(kube, NAME, ADDRESSES, policy)
    results = measure(kube, vip, trials, policy, window, tag="ironlb" if steering else STEERING_OFF)
    nodedeath.unserve(kube, NAME)
    return results


def metallb_side(kube: Kube, trials: int, policy: str, window: float) -> list[Trial]:
    """IronLB out, MetalLB in, and the same trials against it."""
    realmetallb.install(kube.bin_dir)
    vip = nodedeath.serve(kube, NAME, ADDRESSES, policy, pools=realmetallb.pool(NAME, [ADDRESSES]),
                          pool_annotation="metallb.io/address-pool")
    results = measure(kube, vip, trials, policy, window, announced=metallb_announcer, tag="metallb")
    nodedeath.unserve(kube, NAME)
    return results


def side_summary(name: str, results: list[Trial], policy: str, window: float, version: str) -> dict[str, Any]:
    """A side's summary, saying which load balancer ran and how."""
    mode = {"balancer": "metallb", "metallb_version": version} if name == "metallb" else {
        "balancer": "ironlb", "steering": name != STEERING_OFF}
    return {**summary([f for f, _ in results], policy, window), **mode}


def run(trials: int, policy: str, window: float, steering_off: bool = False, plot: Path | None = None,
        save_dir: Path | None = None) -> int:
    """Both sides on the real-node lab (with STEERING_OFF, IronLB with steering off between them), IronLB
    installed again afterwards; print the figures. With SAVE_DIR, write each side as `benchmarks.failover
    --kubelet --save` does (NAME.json); with PLOT, draw each side's first trial there, one row each."""
    kube = nodedeath.real_lab()
    results: dict[str, list[Trial]] = {}
    try:
        results["ironlb"] = ironlb_side(kube, trials, policy, window)
        if steering_off:
            results[STEERING_OFF] = ironlb_side(kube, trials, policy, window, steering=False)
        results["metallb"] = metallb_side(kube, trials, policy, window)
    finally:
        realmetallb.back_to_ironlb(kube.bin_dir)
    version = metallb.version()
    summaries = {name: side_summary(name, side, policy, window, version) for name, side in results.items()}
    runs = {name: saved_run(summaries[name], side) for name, side in results.items()}
    if save_dir:
        save_dir.mkdir(parents=True, exist_ok=True)
        for name, saved in runs.items():
            (save_dir / f"{name}.json").write_text(json.dumps(saved))
    if plot:
        failover_plot.plot(list(runs.values()), plot)
    report(figures(summaries, version))
    return 0
