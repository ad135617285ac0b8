"""Side by side with MetalLB, in the same lab, in one run: one driver, the same workload, prober
and kill against IronLB and then MetalLB; only the pool CRs differ (ironlb.io vs metallb.io).

`python -m benchmarks.compare [--trials N] [--plot FILE] [--assign-only]`. Figures, each as <figure>_ironlb,
<figure>_metallb and <figure>_ratio (metallb ÷ ironlb for times and costs, ironlb ÷ metallb for
rates): failover_p50_s, failover_p95_s, assign_p50_ms, assign_p99_ms, burst_per_s,
api_write_ceiling_per_s, speaker_rss_mb, speaker_idle_cpu_pct, arp_p50_ms, arp_p99_ms,
api_writes_per_min_idle; plus metallb_version and the raw failover trials. Last line: the JSON.

api_writes_per_min_idle: kube-apiserver's apiserver_request_total for mutating verbs (POST, PUT,
PATCH, DELETE, APPLY), read before and after a window in steady state (200 announced Services
with endpoints, settled), per minute, less the same count over a window with neither running.

--assign-only runs the assignment scenario alone (assign_p50_ms, assign_p99_ms, burst_per_s,
api_write_ceiling_per_s, burst_of_ceiling): no failover, ARP or idle window.

`python -m benchmarks.compare --kubelet [--trials N] [--policy Cluster|Local] [--steering-off] [--plot FILE]
[--save-dir DIR]`:
the announcing node's death on real nodes instead, `benchmarks.failover --kubelet`'s trials against each (3 by
default); figures vip_moved_p95_s, all_connections_ok_p95_s, failed_connections_per_kill, named and oriented as
above (see benchmarks._compare_kubelet).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from benchmarks import _compare_kubelet
from benchmarks import _compare_scenarios as sc
from benchmarks._compare_impls import IMPLS, IRONLB, Impl, metallb_version, start, stop_all
from benchmarks._figures import oriented_ratio
from benchmarks._lab import core_api, lab, percentile, report
from e2e.lab import workload
from e2e.testkit import nodedeath
from e2e.testkit.connections import WINDOW_S
from e2e.testkit.testing import Kube

# Figure -> True if higher is better (a rate): its ratio is ironlb ÷ metallb, else metallb ÷ ironlb.
FIGURES = {"failover_p50_s": False, "failover_p95_s": False, "assign_p50_ms": False, "assign_p99_ms": False,
           "burst_per_s": True, "api_write_ceiling_per_s": True, "speaker_rss_mb": False,
           "speaker_idle_cpu_pct": False, "arp_p50_ms": False, "arp_p99_ms": False,
           "api_writes_per_min_idle": False}
DIGITS = {"_s": 3, "_ms": 2, "_mb": 1, "_pct": 2}


def _round(name: str, value: float) -> float:
    return round(value, next((d for suffix, d in DIGITS.items() if name.endswith(suffix)), 1))


def ratio(figure: str, ironlb: float | None, metallb: float | None) -> float | None:
    """The figure's ratio, oriented so that > 1 means IronLB is ahead (None when undefined)."""
    return oriented_ratio(FIGURES[figure], ironlb, metallb)


def _fresh_namespace(kube: Kube, name: str) -> None:
    # The implementation that ran before is stopped: nothing will take its cleanup finalizer off its Services.
    names = kube.kubectl("get", "services", "-n", name, "-o", "name", "--ignore-not-found").stdout.split()
    for svc in names:
        kube.kubectl("patch", svc, "-n", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    kube.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true", timeout=300)
    kube.kubectl("create", "namespace", name)


def run_impl(kube: Kube, impl: Impl, sizes: sc.Sizes, ceiling: list[str], baseline: dict[str, float],
             tag: int, assign_only: bool = False) -> dict[str, Any]:
    """Every scenario against IMPL alone (ASSIGN_ONLY: the assignment scenario alone); its raw figures."""
    print(f"== {impl.name}", flush=True)
    _fresh_namespace(kube, sc.NAMESPACE)
    start(impl, kube)
    if assign_only:
        out = sc.assign(kube, impl, core_api(), sizes, ceiling, tag)
        print(f"{impl.name} assign: { {k: out[k] for k in ('assign_p50_ms', 'burst_per_s')} }", flush=True)
        impl.stop()
        impl.delete_pools(kube, "cmp-single", "cmp-burst")
        _fresh_namespace(kube, sc.NAMESPACE)
        return out
    kube.deploy(sc.VIP_APP, replicas=3, nodes=sc.NODES, namespace=sc.NAMESPACE)
    kube.deploy(sc.IDLE_APP, replicas=3, nodes=sc.NODES, namespace=sc.NAMESPACE)
    vip = sc.setup_vip(kube, impl)
    times = []
    for i in range(sizes.trials):
        times.append(sc.failover_trial(kube, vip, sizes.prober_s))
        print(f"{impl.name} failover {i + 1}: traffic back after {times[-1] * 1000:.0f} ms", flush=True)
    arp = sc.arp(vip)
    print(f"{impl.name} arp at 1k/s: {arp}", flush=True)
    out: dict[str, Any] = {"failover_trials_s": [round(t, 3) for t in times],
                           "failover_p50_s": percentile(times, 50), "failover_p95_s": percentile(times, 95),
                           "arp_p50_ms": arp["p50_ms"], "arp_p99_ms": arp["p99_ms"],
                           "arp_replies": f"{arp['replies']}/{arp['sent']}"}
    api = core_api()
    out.update(sc.assign(kube, impl, api, sizes, ceiling, tag))
    print(f"{impl.name} assign: { {k: out[k] for k in ('assign_p50_ms', 'burst_per_s')} }", flush=True)
    out.update(sc.idle(kube, impl, api, sizes, baseline))
    print(f"{impl.name} idle: {out['api_writes_idle_by_resource']}", flush=True)
    impl.stop()  # nobody reacts to the clean-up, and the next one starts on an empty namespace
    for app in (sc.VIP_APP, sc.IDLE_APP):
        workload.delete(app)
    impl.delete_pools(kube, sc.VIP_APP, sc.IDLE_APP, "cmp-single", "cmp-burst")
    _fresh_namespace(kube, sc.NAMESPACE)
    return out


def figures(raw: dict[str, dict[str, Any]], baseline: float, baseline_by: dict[str, float]) -> dict[str, Any]:
    """Name every figure for both sides, with its ratio."""
    out: dict[str, Any] = {"metallb_version": metallb_version(), "api_writes_per_min_baseline": round(baseline, 1),
                           "api_writes_baseline_by_resource": baseline_by}
    for fig in FIGURES:
        if all(fig not in raw[impl.name] for impl in IMPLS):
            continue  # a scenario not run (--assign-only)
        values = {impl.name: raw[impl.name].get(fig) for impl in IMPLS}
        for name, v in values.items():
            out[f"{fig}_{name}"] = None if v is None or math.isinf(v) else _round(fig, v)
        out[f"{fig}_ratio"] = ratio(fig, values["ironlb"], values["metallb"])
    for impl in IMPLS:
        r = raw[impl.name]
        out[f"burst_of_ceiling_{impl.name}"] = round(r["burst_per_s"] / r["api_write_ceiling_per_s"], 2)
        out[f"burst_complete_{impl.name}"] = r["burst_complete"]
        out[f"burst_writes_per_service_{impl.name}"] = r["burst_writes_per_service"]
        if "failover_trials_s" not in r:
            continue  # --assign-only
        out[f"failover_trials_s_{impl.name}"] = r["failover_trials_s"]
        out[f"arp_replies_{impl.name}"] = r["arp_replies"]
        out[f"api_writes_idle_by_resource_{impl.name}"] = r["api_writes_idle_by_resource"]
        out[f"api_writes_per_min_idle_raw_{impl.name}"] = round(r["api_writes_per_min_idle_raw"], 1)
    return out


def compare(sizes: sc.Sizes, assign_only: bool = False) -> dict[str, Any]:
    """The whole run on one lab (ASSIGN_ONLY: the assignment scenario alone); IronLB runs again afterwards,
    as the lab had it."""
    kube = lab()
    try:
        stop_all()
        _fresh_namespace(kube, sc.CEILING_NAMESPACE)
        ceiling = sc.create_ceiling_services(core_api(), sizes.burst)
        baseline, baseline_by = 0.0, {}
        if not assign_only:  # the idle window's baseline
            baseline, baseline_by = sc.baseline(kube, sizes.idle_window_s, sizes.settle_s)
            print(f"baseline: {baseline:.1f} writes/min {baseline_by}", flush=True)
        raw = {impl.name: run_impl(kube, impl, sizes, ceiling, baseline_by, tag, assign_only)
               for tag, impl in enumerate(IMPLS, 1)}
    finally:
        stop_all()
        IRONLB.start()
    kube.kubectl("delete", "namespace", sc.CEILING_NAMESPACE, "--wait=false")
    return figures(raw, baseline, baseline_by)


def main(argv: list[str] | None = None) -> int:
    """Run (or re-plot) and print the figures."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, help="failover trials per implementation (default 10, with --kubelet 3)")
    p.add_argument("--plot", type=Path, help="write the side-by-side picture (PNG) here")
    p.add_argument("--from-json", type=Path, help="plot the figures of an earlier run instead of running")
    p.add_argument("--burst", type=int, default=sc.Sizes.burst)
    p.add_argument("--single", type=int, default=sc.Sizes.single)
    p.add_argument("--idle-window", type=float, default=sc.Sizes.idle_window_s)
    p.add_argument("--assign-only", action="store_true", help="the assignment scenario alone (single Services, "
                   "then a burst beside the API write ceiling)")
    p.add_argument("--kubelet", action="store_true", help="the announcing node's death on real nodes, as a client "
                   "sees every connection (see benchmarks._compare_kubelet)")
    p.add_argument("--policy", choices=nodedeath.POLICIES, help="with --kubelet: externalTrafficPolicy "
                   "(default Cluster)")
    p.add_argument("--steering-off", action="store_true", help="with --kubelet: also IronLB with steering off "
                   "(Kubernetes alone), between the two")
    p.add_argument("--save-dir", type=Path, help="with --kubelet: write each side's run (ironlb.json, metallb.json) "
                   "here, as `benchmarks.failover --kubelet --save` does")
    args = p.parse_args(argv)
    if args.kubelet:
        if args.from_json:
            p.error("--from-json is not for --kubelet (benchmarks.failover_plot draws saved runs)")
        return _compare_kubelet.run(args.trials or 3, args.policy or "Cluster", WINDOW_S,
                                    steering_off=args.steering_off, plot=args.plot, save_dir=args.save_dir)
    if args.policy or args.save_dir or args.steering_off:
        p.error("--policy, --steering-off and --save-dir need --kubelet")
    if args.from_json:
        lines = [ln for ln in args.from_json.read_text().splitlines() if ln.startswith("{")]
        result = json.loads(lines[-1])  # the last JSON line of a saved run's output
    else:
        result = compare(sc.Sizes(trials=args.trials or 10, burst=args.burst, single=args.single,
                                  idle_window_s=args.idle_window), assign_only=args.assign_only)
    if args.plot:
        from benchmarks._compare_plot import plot

        plot(result, args.plot)
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
