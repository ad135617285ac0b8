"""BGP withdraw on the router side: a node hard-killed (links cut, no FIN, no NOTIFICATION) until the lab router's
kernel FIB drops its next hop. `python -m benchmarks.bgp [--trials N]`, one JSON line.

Figures (p95 over the trials, each node killed in turn and revived between trials):
- withdraw_p95_s_bfd300, withdraw_p95_s_bfd100: IronLB's own speakers, a BGPPeer with a BFDProfile of 300 ms x 3,
  then 100 ms x 3 (the router's BFD profile the same), a Cluster Service's IP announced by every node; after each
  revive the next kill waits until the router's BFD runs at the profile's timers with every node again;
- withdraw_p95_s_metallb: MetalLB v0.16.1's native BGP speaker (no BFD) with its hold time at its 3 s minimum,
  announcing a LoadBalancer Service's IP from all nodes;
- withdraw_p95_s_nobfd: IronLB's own speakers with --bgp-proxy-next-hops (each node's path announced by another
  node, with the first one's address as next hop), a BGPPeer without BFD, the router's BFD off, hold time 9 s:
  a Cluster Service's IP from all nodes (nobfd_side).

What it leaves out: traffic (no probe flows run from bgpclient during the kills), IPv6 prefixes, and any router
but FRR. With BFD the router's detection is the withdraw; the speakers' part is the configuration they gave FRR.

Then IronLB's own speakers in BGP mode (benchmarks._bgp_drain, where its figures and what it leaves out are said):
drain_lost_probes (speaker SIGTERM, cordon, kubectl drain; 128 flows at 200 Hz from bgpclient) and ecmp_share_min;
endpoint_withdraw_p99_ms and status_visible_p95_s (benchmarks._bgp_timing);
sync_10k_s with speaker_rss_mb and frr_rss_mb (benchmarks._bgp_sync).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from benchmarks._bgp_drain import drain_figures
from benchmarks._bgp_sync import sync_part
from benchmarks._bgp_timing import timing_figures
from benchmarks._figures import percentile, report
from e2e.lab import bgp, ironlb_procs, lab, metallb, workload
from e2e.lab.config import NodeAddr
from e2e.lab.state import load_state
from e2e.testkit import bgpmetallb, bgpproxy
from e2e.testkit import bgprouter as router
from e2e.testkit.bgpdrain import bgp_lab, bgp_manifests, lb_service, service_ip
from e2e.testkit.testing import Kube, ensure_lab

APP = "bgpbench"
BFD_APP, BFD_POOL, BFD_PEER = "bgpbfd", "bgp-bfd", "lab-router-bfd"
BFD_ADDRESSES = "203.0.113.249/32"  # in no other test's pool
# How long MetalLB's sessions and routes may take to come up after it starts or after a node's revive (once, at
# the start, they took over 30 s; why was not found); not part of any figure
METALLB_UP_S = 120


def ironlb_side(kube: Kube, bfd: bgp.Bfd, trials: int) -> list[float]:
    """Seconds from the cut to the next hop's drop for IronLB's speakers with a BFDProfile at BFD's timers (the
    router's profile the same), a Cluster Service's IP announced by every node, TRIALS kills."""
    bgp.set_bfd(bfd)
    manifests = bgp_manifests(BFD_PEER, f"bench{bfd.interval_ms}", BFD_POOL, BFD_ADDRESSES, timers=bfd)
    with bgp_lab(kube, manifests) as nodes:
        kube.deploy(BFD_APP, replicas=len(nodes), nodes=[n.name for n in nodes])
        kube.apply(lb_service(BFD_APP, BFD_POOL, "Cluster"))
        try:
            prefix = f"{service_ip(kube, BFD_APP)}/32"
            _wait_carried_with_bfd(nodes, prefix, bfd)
            return [_kill_once(nodes, nodes[trial % len(nodes)], prefix, bfd) for trial in range(trials)]
        finally:
            kube.kubectl("delete", "service", BFD_APP, "--ignore-not-found", "--wait=false", check=False)
            kube.undeploy(BFD_APP)


def _kill_once(nodes: list[NodeAddr], dead: NodeAddr, prefix: str, bfd: bgp.Bfd) -> float:
    """Cut DEAD: the seconds until the router's FIB drops it from PREFIX; revived, and carried again at BFD's timers."""
    took = router.kill_and_time_drop(dead, prefix)
    lab.revive_node(dead.name)
    # a revived node's BFD starts slow (RFC 5880 6.8.3): the next kill must meet the profile's timers
    _wait_carried_with_bfd(nodes, prefix, bfd)
    if took is None:
        raise RuntimeError(f"BFD {bfd.interval_ms}: {dead.name}'s next hop not dropped")
    print(f"bfd {bfd.interval_ms} x {bfd.multiplier}: {dead.name} dropped after {took:.3f} s", file=sys.stderr)
    return took


def _wait_carried_with_bfd(nodes: list[NodeAddr], prefix: str, bfd: bgp.Bfd) -> None:
    """PREFIX via every node in the router's FIB, and the router's BFD with each at BFD's timers."""
    router.wait_all_up(nodes, ipv6=False, prefix=prefix)
    router.wait_bfd_negotiated(nodes, bfd)


def service(name: str) -> dict[str, Any]:
    """A LoadBalancer Service over the benchmark's pods (Cluster policy: every node announces it)."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "LoadBalancer", "selector": {"app": APP},
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def metallb_side(kube: Kube, nodes: list[NodeAddr], trials: int) -> list[float]:
    """Seconds from the cut to the next hop's drop for MetalLB's native BGP (hold time 3 s), TRIALS kills."""
    bgpmetallb.start_in_place_of_ironlb()  # its BGPPeer towards the router, its pool and advertisement
    try:
        workload.deploy(APP, len(nodes), [n.name for n in nodes], 8080, "default", load_state().ipv6)
        kube.apply(service(APP))
        vip = service_ip(kube, APP)
        prefix = f"{vip}/32"
        router.wait_all_up(nodes, ipv6=False, prefix=prefix, bfd=False, timeout=METALLB_UP_S)
        times = []
        for trial in range(trials):
            dead = nodes[trial % len(nodes)]
            took = router.kill_and_time_drop(dead, prefix=prefix)
            lab.revive_node(dead.name)
            router.wait_all_up(nodes, ipv6=False, prefix=prefix, bfd=False, timeout=METALLB_UP_S)
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
        runs = {f"bfd{b.interval_ms}": ironlb_side(kube, b, args.trials)
                for b in (bgp.Bfd(300, 3), bgp.Bfd(100, 3))}
        bgp.set_bfd(bgp.DEFAULT_BFD)
        runs["nobfd"] = nobfd_side(kube, nodes, args.trials)
        runs["metallb"] = metallb_side(kube, nodes, args.trials)
        drained = drain_figures(kube)  # IronLB's own speakers: drains, ECMP (benchmarks._bgp_drain)
        drained.update(timing_figures(kube, args.trials))  # endpoint withdraw, status (benchmarks._bgp_timing)
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
