"""Paths on other nodes' behalf (`--bgp-proxy-next-hops`) as tests and benchmarks drive them: IronLB's speakers
with the option on, a BGPPeer without BFD, the router's BFD off, a Cluster Service announced by every node, and
the time from a node's cut until the router's FIB drops its next hop."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from e2e.lab import bgp, frr, ironlb_procs, lab, procs
from e2e.lab.config import NodeAddr
from e2e.lab.state import load_state
from e2e.testkit import bgprouter as router
from e2e.testkit.bgpdrain import bgp_manifests, lb_service
from e2e.testkit.testing import Kube, wait_for

PROXY_ENV = {"IRONLB_BGP_PROXY_NEXT_HOPS": "true"}
APP = "bgpproxy"
POOL = "bgp-proxy"
ADDRESSES = "203.0.113.250/32"  # in no other test's pool
PEER = "lab-router-nobfd"
HOLD_TIME = "9s"  # the lab's: what the router falls back on when it has no BFD


def manifests() -> list[dict[str, Any]]:
    """A BGPPeer towards the router without BFD, the pool and its BGPAdvertisement."""
    return bgp_manifests(PEER, None, POOL, ADDRESSES, hold_time=HOLD_TIME)


def service() -> dict[str, Any]:
    """A Cluster LoadBalancer Service from POOL over the app's pods: every node carries its IP."""
    return lb_service(APP, POOL, "Cluster")


def router_bfd(on: bool) -> None:
    """The router's BFD towards the nodes on (the lab's profile) or off."""
    line = f"neighbor {bgp.PEER_GROUP} bfd profile {bgp.BFD_PROFILE}" if on else f"no neighbor {bgp.PEER_GROUP} bfd"
    frr.configure(bgp.ROUTER_DIR, [f"router bgp {bgp.ROUTER_ASN}", line])


def restart_speaker(name: str, env: dict[str, str] | None) -> None:
    """NAME's speaker started again with ENV (SIGKILL first: no drain, its FRR keeps what it holds)."""
    procs.stop(f"speaker-{name}", sig=9, timeout=5)
    ironlb_procs.start_speaker(name, env=env)


def router_paths(prefix: str) -> list[tuple[str, str]]:
    """The router's BGP paths of PREFIX: (the neighbor it came from, its next hop)."""
    out = frr.vtysh(bgp.ROUTER_DIR, f"show bgp ipv4 unicast {prefix} json", check=False).stdout
    data = json.loads(out) if out.strip().startswith("{") else {}
    return [(p.get("peer", {}).get("peerId", ""), (p.get("nexthops") or [{}])[0].get("ip", ""))
            for p in data.get("paths", [])]


def proxied_everywhere(nodes: list[NodeAddr], prefix: str) -> bool:
    """Every node a next hop of PREFIX in the router's FIB, each over another node's session only."""
    addresses = {n.ipv4 for n in nodes}
    paths = router_paths(prefix)
    live = [(peer, hop) for peer, hop in paths if peer in addresses]
    return (bgp.router_next_hops(prefix) == addresses and {hop for _, hop in live} == addresses
            and all(peer != hop for peer, hop in live) and len(paths) == len(live))


@contextmanager
def proxied_service(kube: Kube) -> Iterator[str]:
    """The setup (speakers with the option, router without BFD, the Service); yields its prefix; undone after."""
    nodes = load_state().live_nodes
    router_bfd(False)
    for n in nodes:
        restart_speaker(n.name, PROXY_ENV)
    kube.apply(*manifests())
    kube.deploy(APP, replicas=len(nodes), nodes=[n.name for n in nodes])
    kube.apply(service())
    try:
        ip = wait_for(lambda: ((kube.get("service", APP).get("status", {}).get("loadBalancer") or {})
                               .get("ingress") or [{}])[0].get("ip"), timeout=30, what=f"{APP}'s IP")
        prefix = f"{ip}/32"
        wait_for(lambda: proxied_everywhere(nodes, prefix), timeout=60,
                 what=f"{prefix} via every node, each over another node's session")
        yield prefix
    finally:
        kube.kubectl("delete", "service", APP, "--ignore-not-found", "--wait=false", check=False)
        kube.undeploy(APP)
        for kind, name in (("bgpadvertisement", POOL), ("ipaddresspool", POOL), ("bgppeer", PEER)):
            kube.kubectl("delete", kind, name, "--ignore-not-found", "--wait=false", check=False)
        for n in load_state().live_nodes:
            restart_speaker(n.name, None)
        router_bfd(True)


def kill_once(dead: NodeAddr, prefix: str, limit: float = 15.0) -> tuple[float | None, set[str]]:
    """Cut DEAD: the seconds until the router's FIB drops it as a next hop of PREFIX (None: not within LIMIT) and
    the next hops then; then revive it with the option on and wait until every node is carried again."""
    took = router.kill_and_time_drop(dead, prefix, limit)
    hops, after = bgp.router_next_hops(prefix), router_paths(prefix)
    lab.revive_node(dead.name)
    restart_speaker(dead.name, PROXY_ENV)
    print(f"proxied, no BFD: {dead.name} cut, next hop dropped after {took} s; the router's FIB then {sorted(hops)}, "
          f"its paths (from, next hop) {after}", file=sys.stderr)
    nodes = load_state().live_nodes
    wait_for(lambda: proxied_everywhere(nodes, prefix), timeout=60,
             what=f"{dead.name} back, {prefix} via every node over another's session")
    return took, hops
