"""Failover: kill the announcing node, time until the client's next successful request.

`python -m benchmarks.failover [TRIALS] [--services N] [--heartbeat INTERVAL:TIMEOUT]`: 20 trials on
the lab (real kube-proxy, real kernel networking); --services adds N background LoadBalancer Services
(IPv6, no selector), assigned and announced before the first trial, so every speaker carries them;
--heartbeat runs every speaker with these heartbeat timings (seconds; revived ones too) and puts the
defaults back afterwards. Figures: p50_s, p95_s, max_s, trials, background_services, heartbeat.

`python -m benchmarks.failover [TRIALS] --kubelet [--policy Cluster|Local] [--window S] [--steering on|off]
[--save PATH] [--plot PATH]`: 3 trials on real nodes, nothing drained before the kill, every connection the client
makes counted (see benchmarks._failover_kubelet); --save writes the figures and every trial's timeline as JSON,
--plot draws the first trial's timeline (see benchmarks.failover_plot, which also combines saved runs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks import _failover_kubelet
from benchmarks._lab import core_api, lab, percentile, report, v6_service
from e2e.lab import ironlb_procs, workload
from e2e.lab import lab as lab_ctl
from e2e.lab.config import REPO
from e2e.testkit import nodedeath
from e2e.testkit.connections import WINDOW_S
from e2e.testkit.testing import Kube, pool_manifests, wait_for
from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S

NODES = ["node-1", "node-2", "node-3"]
NAME = "bench-failover"
BACKGROUND = "bench-failover-bg"  # namespace and pool of the background Services


def background(kube: Kube, count: int, wait: bool = True) -> None:
    """COUNT LoadBalancer Services in their own namespace and pool, all assigned before returning."""
    kube.kubectl("delete", "namespace", BACKGROUND, "--ignore-not-found", f"--wait={str(wait).lower()}", timeout=600)
    if not count:
        return
    kube.kubectl("create", "namespace", BACKGROUND)
    kube.apply(*pool_manifests(BACKGROUND, ["2001:db8:ffff:f::/112"]))
    api = core_api()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: api.create_namespaced_service(
            BACKGROUND, v6_service(f"bg-{i}", BACKGROUND, selector=False)), range(count)))

    def assigned() -> bool:
        items = api.list_namespaced_service(BACKGROUND).items
        return sum(bool(s.status.load_balancer and s.status.load_balancer.ingress) for s in items) >= count

    wait_for(assigned, timeout=600, what=f"{count} background Services assigned")


def setup(kube: Kube) -> str:
    """Pool, advertisement, a pod on every node, and the Service; return its VIP."""
    kube.apply(*pool_manifests(NAME, ["198.51.100.240/29"]))
    workload.delete(NAME)
    kube.deploy(NAME, replicas=3, nodes=NODES)
    kube.apply({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": NAME, "namespace": "default", "annotations": {"ironlb.io/address-pool": NAME}},
                "spec": {"type": "LoadBalancer", "selector": {"app": NAME},
                         "ports": [{"port": 80, "targetPort": 8080}]}})
    return wait_for(lambda: (kube.get("service", NAME)["status"].get("loadBalancer", {}).get("ingress")
                             or [{}])[0].get("ip"), what="VIP")


def trial(kube: Kube, vip: str) -> float:
    """One kill; seconds from the kill to the first answered request."""
    node = wait_for(lambda: nodedeath.announcer(kube, NAME), what="announcer")
    pod = f"{NAME}-{NODES.index(node)}"
    workload.set_ready(pod, False)  # surviving pods serve; we measure the L2 takeover, not endpoints
    time.sleep(1.5)  # kube-proxy's minSyncPeriod
    # Start from a fresh neighbour entry pointing at the announcer, so the trial measures its death.
    kube.exec("client", "ip", "neigh", "flush", "to", vip)
    wait_for(lambda: kube.curl("client", f"http://{vip}/"), what="traffic before kill")
    neigh = kube.exec("client", "ip", "neigh", "show", vip).stdout
    assert lab_ctl.node_mac(node) in neigh, f"client resolves {vip} to another node: {neigh}"
    prober = subprocess.Popen(["ip", "netns", "exec", "ilb-client", str(REPO / ".venv/bin/python"), "-m",
                               "e2e.probes.prober", vip, "--duration", "6"], stdout=subprocess.PIPE, text=True,
                              env={"PYTHONPATH": f"{REPO}/src:{REPO}"})
    time.sleep(1.0)
    # From when its port went down (what kill_node returns), not from when we asked: a connection opened
    # in between still reached the node and came back in a few ms, which read as a 3 ms failover.
    killed = lab_ctl.kill_node(node)
    out, _ = prober.communicate(timeout=30)
    # Only connections opened after the kill count: one opened before may still finish on the old path.
    after = [float(line.split()[1]) for line in out.splitlines() if line.strip() and float(line.split()[0]) > killed]
    lab_ctl.revive_node(node)
    workload.set_ready(pod, True)
    wait_for(lambda: nodedeath.announcer(kube, NAME) == node, timeout=30, what="announcement back after revive")
    return after[0] - killed if after else float("inf")


def speakers_with(timings: str | None) -> None:
    """Restart every speaker with heartbeat TIMINGS ("interval:timeout"), or with the defaults (None).
    Set in this process's environment too: the speakers the trials revive inherit it."""
    if timings:
        interval, timeout = timings.split(":")
        os.environ.update(IRONLB_HEARTBEAT_INTERVAL=interval, IRONLB_HEARTBEAT_TIMEOUT=timeout)
    else:
        os.environ.pop("IRONLB_HEARTBEAT_INTERVAL", None)
        os.environ.pop("IRONLB_HEARTBEAT_TIMEOUT", None)
    for node in NODES:
        ironlb_procs.restart("speaker", node)
    time.sleep(5)  # all joined again (kube-proxy's first sync, one detection period) and the election settled


def main() -> int:
    """Run the trials and print the figures."""
    p = argparse.ArgumentParser(prog="benchmarks.failover")
    p.add_argument("trials", type=int, nargs="?", help="kills (default 20, with --kubelet 3)")
    p.add_argument("--services", type=int, default=0, help="background LoadBalancer Services")
    p.add_argument("--heartbeat", metavar="INTERVAL:TIMEOUT", help="heartbeat timings for the run, in seconds")
    p.add_argument("--kubelet", action="store_true", help="on real nodes, as a client sees every connection")
    p.add_argument("--policy", choices=nodedeath.POLICIES, help="with --kubelet: externalTrafficPolicy "
                   "(default Cluster)")
    p.add_argument("--window", type=float, help=f"with --kubelet: seconds after the kill that count (default "
                   f"{WINDOW_S:.0f})")
    p.add_argument("--steering", choices=("on", "off"), help="with --kubelet: the chart's "
                   "speaker.steerAroundDeadNodes (default on)")
    p.add_argument("--save", type=Path, help="with --kubelet: write the figures and the trials' timelines here")
    p.add_argument("--plot", type=Path, help="with --kubelet: draw the first trial's timeline here (PNG)")
    args = p.parse_args()
    if args.kubelet:
        if args.services or args.heartbeat:
            p.error("--services and --heartbeat are not for --kubelet")
        return _failover_kubelet.run(args.trials or 3, args.policy or "Cluster", args.window or WINDOW_S,
                                     steering=args.steering != "off", save=args.save, plot=args.plot)
    if args.policy or args.window or args.steering or args.save or args.plot:
        p.error("--policy, --window, --steering, --save and --plot need --kubelet")
    args.trials = 20 if args.trials is None else args.trials
    kube = lab()
    if args.heartbeat:
        speakers_with(args.heartbeat)
    background(kube, args.services)
    vip = setup(kube)
    times = []
    for i in range(args.trials):
        t = trial(kube, vip)
        times.append(t)
        print(f"trial {i + 1}: traffic back after {t * 1000:.0f} ms", flush=True)
    kube.kubectl("delete", "service", NAME, "--wait=false")
    workload.delete(NAME)
    kube.kubectl("delete", "l2advertisement", NAME, "--ignore-not-found")
    kube.kubectl("delete", "ipaddresspool", NAME, "--ignore-not-found")
    background(kube, 0, wait=False)  # 2,000 deletions take minutes: the lab goes down anyway
    kube.kubectl("delete", "l2advertisement", BACKGROUND, "--ignore-not-found")
    kube.kubectl("delete", "ipaddresspool", BACKGROUND, "--ignore-not-found")
    if args.heartbeat:
        speakers_with(None)
    report({"p50_s": round(percentile(times, 50), 3), "p95_s": round(percentile(times, 95), 3),
            "max_s": round(max(times), 3), "trials": len(times), "background_services": args.services,
            "heartbeat": args.heartbeat or f"{INTERVAL_S}:{TIMEOUT_S}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
