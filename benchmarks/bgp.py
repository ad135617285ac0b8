"""BGP withdraw on the router side: a node hard-killed (links cut, no FIN, no NOTIFICATION) until the lab router's
kernel FIB drops its next hop. `python -m benchmarks.bgp [--trials N]`, one JSON line.

Figures (p95 over the trials, each node killed in turn and revived between trials):
- withdraw_p95_s_bfd300, withdraw_p95_s_bfd100: each node's FRR configured the way a speaker would (the
  router-side path: BFD 300 ms x 3, then 100 ms x 3, on both ends), announcing one prefix from all nodes;
- withdraw_p95_s_metallb: MetalLB v0.16.1's native BGP speaker (no BFD) with its hold time at its 3 s minimum,
  announcing a LoadBalancer Service's IP from all nodes;
- withdraw_p95_s_nobfd: IronLB's own speakers with --bgp-proxy-next-hops (each node's path announced by another
  node, with the first one's address as next hop), a BGPPeer without BFD, the router's BFD off, hold time 9 s:
  a Cluster Service's IP from all nodes (nobfd_side).

What it leaves out: IronLB's own speaker. Until the speaker drives its FRR, the IronLB side is FRR configured by
this benchmark (e2e.testkit.bgprouter), so the figures show what the router and BFD do, not what the speaker
adds (how fast it applies a change, drains, or acts on its heartbeats). Also left out: traffic (no probe
flows run from bgpclient), IPv6 prefixes, and any router but FRR.

Then IronLB's own speakers in BGP mode (benchmarks._bgp_drain, where its figures and what it leaves out are said):
drain_lost_probes (speaker SIGTERM, cordon, kubectl drain; 128 flows at 200 Hz from bgpclient) and ecmp_share_min;
sync_10k_s with speaker_rss_mb and frr_rss_mb (benchmarks._bgp_sync).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from benchmarks._bgp_drain import drain_figures
from benchmarks._bgp_sync import sync_part
from benchmarks._figures import percentile, report
from e2e.lab import bgp, ironlb_procs, lab, metallb, workload
from e2e.lab.config import NodeAddr
from e2e.lab.state import load_state
from e2e.testkit import bgpproxy
from e2e.testkit import bgprouter as router
from e2e.testkit.testing import Kube, ensure_lab, wait_for

APP = "bgpbench"


def ironlb_side(nodes: list[NodeAddr], ipv6: bool, bfd: bgp.Bfd, trials: int) -> list[float]:
    """Seconds from the cut to the next hop's drop, for TRIALS kills with each node's FRR set as a speaker would."""
    for n in nodes:
        router.configure_node(n, bfd, ipv6)
    router.wait_all_up(nodes, ipv6)
    router.set_bfd_everywhere(nodes, bfd)
    times = []
    for trial in range(trials):
        dead = nodes[trial % len(nodes)]
        took = router.kill_and_time_drop(dead)
        lab.revive_node(dead.name)
        router.configure_node(dead, bfd, ipv6)
        router.wait_all_up(nodes, ipv6)
        if took is None:
            raise RuntimeError(f"BFD {bfd.interval_ms}: {dead.name}'s next hop not dropped")
        times.append(took)
        print(f"bfd {bfd.interval_ms} x {bfd.multiplier}: {dead.name} dropped after {took:.3f} s", file=sys.stderr)
    for n in nodes:
        router.unconfigure_node(n)
    return times


def service(name: str) -> dict[str, Any]:
    """A LoadBalancer Service over the benchmark's pods (Cluster policy: every node announces it)."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "LoadBalancer", "selector": {"app": APP},
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def metallb_side(kube: Kube, nodes: list[NodeAddr], trials: int) -> list[float]:
    """Seconds from the cut to the next hop's drop for MetalLB's native BGP (hold time 3 s), TRIALS kills."""
    ironlb_procs.stop_ironlb()
    metallb.start()  # on a --bgp lab: its BGPPeer towards the router, its pool and advertisement
    try:
        workload.deploy(APP, len(nodes), [n.name for n in nodes], 8080, "default", load_state().ipv6)
        kube.apply(service(APP))
        vip = wait_for(lambda: (kube.get("service", APP).get("status", {}).get("loadBalancer", {})
                                .get("ingress") or [{}])[0].get("ip"), timeout=60, what="MetalLB's IP")
        prefix = f"{vip}/32"
        router.wait_all_up(nodes, ipv6=False, prefix=prefix, bfd=False)
        times = []
        for trial in range(trials):
            dead = nodes[trial % len(nodes)]
            took = router.kill_and_time_drop(dead, prefix=prefix)
            lab.revive_node(dead.name)
            router.wait_all_up(nodes, ipv6=False, prefix=prefix, bfd=False)
            if took is None:
                raise RuntimeError(f"MetalLB: {dead.name}'s next hop not dropped")
            times.append(took)
            print(f"metallb: {dead.name} dropped after {took:.3f} s", file=sys.stderr)
        return times
    finally:
        kube.kubectl("delete", "service", APP, "--ignore-not-found", check=False)
        workload.delete(APP)
        metallb.stop()
        ironlb_procs.start_ironlb()


def main() -> None:
    """Run both sides on the lab's router and print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bgp", description=__doc__)
    parser.add_argument("--trials", type=int, default=6, help="kills per side (nodes killed in turn)")
    args = parser.parse_args()
    started = time.monotonic()
    kube, _ = ensure_lab(nodes=3, ipv6=True)
    attached = lab.attach_bgp()
    try:
        state = load_state()
        nodes = state.live_nodes
        runs = {f"bfd{b.interval_ms}": ironlb_side(nodes, state.ipv6, b, args.trials)
                for b in (bgp.Bfd(300, 3), bgp.Bfd(100, 3))}
        router.set_bfd_everywhere([], bgp.DEFAULT_BFD)
        runs["nobfd"] = nobfd_side(kube, nodes, args.trials)
        runs["metallb"] = metallb_side(kube, nodes, args.trials)
        drained = drain_figures(kube)  # IronLB's own speakers: drains, ECMP (benchmarks._bgp_drain)
        drained.update(sync_part(kube))  # and 10,000 VIPs' initial sync (benchmarks._bgp_sync)
    finally:
        if attached:
            lab.detach_bgp()
    figures: dict[str, Any] = {f"withdraw_p95_s_{side}": round(percentile(t, 95), 3) for side, t in runs.items()}
    figures.update({f"withdraw_trials_s_{side}": [round(x, 3) for x in t] for side, t in runs.items()})
    figures.update(metallb_hold_time_s=float(bgp.METALLB_HOLD_TIME.rstrip("s")), trials=args.trials,
                   metallb_version=metallb.version(), wall_s=round(time.monotonic() - started, 1))
    figures.update(drained)
    report(figures)


def nobfd_side(kube: Kube, nodes: list[NodeAddr], trials: int) -> list[float]:
    """Seconds from the cut to the next hop's drop for IronLB's speakers announcing on each other's behalf, the
    router without BFD, TRIALS kills (e2e.testkit.bgpproxy)."""
    times = []
    with bgpproxy.proxied_service(kube) as prefix:
        for trial in range(trials):
            dead = nodes[trial % len(nodes)]
            took, _ = bgpproxy.kill_once(dead, prefix)
            if took is None:
                raise RuntimeError(f"proxied, no BFD: {dead.name}'s next hop not dropped")
            times.append(took)
    return times


if __name__ == "__main__":
    main()
