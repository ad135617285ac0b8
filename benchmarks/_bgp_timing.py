"""benchmarks.bgp's endpoint and status part: how fast a change reaches the router, and a session's end the API.

IronLB's speakers in BGP mode on the lab's 3 nodes, a BGPPeer towards the router with BFD (300 ms x 3):
- `endpoint_withdraw_p99_ms`: a Local Service with one pod, so one node announces it. The pod is made not ready
  TRIALS times (ready again between), then deleted; each time from the EndpointSlice showing no ready endpoint (a
  watch on the API server) until the router's kernel deletes the route (`ip monitor route` in its namespace);
- `status_visible_p95_s`: the router shuts its sessions with every node (a Cease NOTIFICATION), TRIALS times; from
  the shutdown until each node's BGPNodeStatus shows its session down (one sample per node and time).

What it leaves out: the endpoint's way to the EndpointSlice (the kubelet's probe, the endpoints controller), IPv6
routes, a router other than FRR; and a node's own death, which the router's BFD judges (the withdraw figures).
"""

from __future__ import annotations

from typing import Any

from benchmarks._figures import percentile
from e2e.lab import bgp, workload
from e2e.lab.config import NodeAddr
from e2e.testkit.bgpdrain import bgp_lab, bgp_manifests, lb_service, service_ip
from e2e.testkit.bgpwithdraw import time_sessions_shown_down, time_withdraw
from e2e.testkit.testing import Kube, wait_for

POOL, PEER, APP = "bgp-timing", "timing-router", "bgptiming"
ADDRESSES = "203.0.113.248/32"  # in no other test's pool


def timing_figures(kube: Kube, trials: int) -> dict[str, Any]:
    """The endpoint withdraw and status figures, TRIALS of each."""
    with bgp_lab(kube, bgp_manifests(PEER, "timing", POOL, ADDRESSES)) as nodes:
        withdraws = _endpoint_withdraws(kube, nodes[0], trials)
        visible: list[float] = []
        for _ in range(trials):
            _wait_established(nodes)
            visible += time_sessions_shown_down(nodes, PEER).values()
        _wait_established(nodes)
    ms = sorted(round(t * 1000, 1) for t in withdraws)
    return {"endpoint_withdraw_p99_ms": round(percentile(ms, 99), 1), "endpoint_withdraw_ms": ms,
            "status_visible_p95_s": round(percentile(visible, 95), 3),
            "status_visible_s": sorted(round(t, 3) for t in visible)}


def _endpoint_withdraws(kube: Kube, holder: NodeAddr, trials: int) -> list[float]:
    """Seconds from the EndpointSlice's change to the route's deletion: TRIALS not-ready pods, then a deleted one."""
    (pod,) = kube.deploy(APP, replicas=1, nodes=[holder.name])
    kube.apply(lb_service(APP, POOL, "Local"))
    try:
        ip = service_ip(kube, APP, timeout=30)
        took = []
        for _ in range(trials):
            _wait_routed_via(ip, holder.ipv4)
            took.append(time_withdraw(ip, APP, lambda: workload.set_ready(pod, False)))
            workload.set_ready(pod, True)
        _wait_routed_via(ip, holder.ipv4)
        took.append(time_withdraw(ip, APP, lambda: kube.undeploy(APP)))
        return took
    finally:
        kube.kubectl("delete", "service", APP, "--ignore-not-found", "--wait=false", check=False)
        kube.undeploy(APP)


def _wait_established(nodes: list[NodeAddr]) -> None:
    wait_for(lambda: all(bgp.router_sessions().get(n.ipv4) == "Established" for n in nodes), timeout=30,
             what="every node's session Established at the router")


def _wait_routed_via(ip: str, hop: str) -> None:
    wait_for(lambda: bgp.router_next_hops(f"{ip}/32") == {hop}, timeout=30, what=f"{ip} via {hop} only")
