"""benchmarks.bgp's sync part: 10,000 VIPs x 3 nodes, from the speakers' start until the router holds them all.

The Services (IPv6 single-stack from a pool of their own, externalTrafficPolicy Cluster, no selector: each has one
EndpointSlice written here with one ready endpoint, since the lab's EndpointSlice controller writes 20 objects a
second) are created and given their IPs by the operator while the speakers are stopped; then the 3 speakers start
in BGP mode at once, each with its session to the router over IPv6.

- `sync_10k_s`: from the speakers' start until the router's bgpd has received every prefix from every node;
  `sync_fib_10k_s`: until its kernel FIB holds every route (3 next hops each);
- `speaker_rss_mb`: the largest speaker's resident memory then (control plane and fast plane processes);
- `frr_rss_mb`: the largest node's FRR (zebra, bgpd, bfdd) then.

What it leaves out: the speakers' start includes their list of every Service and EndpointSlice and their wait for
kube-proxy's first sync (so it is what a node's restart costs, not only FRR's part); endpoint churn during the sync.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client

from benchmarks._figures import report
from benchmarks._lab import core_api
from e2e.lab import bgp, frr, ironlb_procs, lab, procs
from e2e.lab.config import NodeAddr
from e2e.lab.state import load_state
from e2e.testkit.bgpdrain import GROUP, stop_speakers
from e2e.testkit.testing import Kube, ensure_lab, wait_for

NAMESPACE = "bench-bgpsync"
POOL = "bgp-sync"
ADDRESSES = "2001:db8:ffff:36::/112"  # in no other test's pool
PEER = "sync-router-v6"
WRITERS = 32


def manifests() -> list[dict[str, Any]]:
    """An IPv6 session to the router from every node, the pool, and its advertisement to that peer only."""
    return [
        {"apiVersion": GROUP, "kind": "BGPPeer", "metadata": {"name": PEER},
         "spec": {"myASN": bgp.NODE_ASN, "peerASN": bgp.ROUTER_ASN, "peerAddress": bgp.ROUTER_IP_V6,
                  "holdTime": "9s", "connectTime": "1s"}},
        {"apiVersion": GROUP, "kind": "IPAddressPool", "metadata": {"name": POOL},
         "spec": {"addresses": [ADDRESSES], "autoAssign": False}},
        {"apiVersion": GROUP, "kind": "BGPAdvertisement", "metadata": {"name": POOL},
         "spec": {"ipAddressPools": [POOL], "peers": [PEER]}},
    ]


def _service(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"s{i}", "annotations": {"ironlb.io/address-pool": POOL}},
            "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv6"], "ipFamilyPolicy": "SingleStack",
                     "allocateLoadBalancerNodePorts": False, "ports": [{"port": 80, "targetPort": 8080}]}}


def _slice(i: int, node: NodeAddr) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"s{i}", "labels": {"kubernetes.io/service-name": f"s{i}"}},
            "addressType": "IPv6", "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [f"2001:db8:19:{node.index:x}::99"], "conditions": {"ready": True},
                           "nodeName": node.name}]}


def _create_all(count: int, nodes: list[NodeAddr]) -> None:
    core = core_api(WRITERS)
    discovery = client.DiscoveryV1Api(core.api_client)
    core.create_namespace({"metadata": {"name": NAMESPACE}})

    def create(i: int) -> None:
        core.create_namespaced_service(NAMESPACE, _service(i))
        discovery.create_namespaced_endpoint_slice(NAMESPACE, _slice(i, nodes[i % len(nodes)]))
    with ThreadPoolExecutor(WRITERS) as workers:
        list(workers.map(create, range(count)))


def _assigned(kube: Kube) -> int:
    out = kube.kubectl("get", "services", "-n", NAMESPACE, "-o",
                       "jsonpath={range .items[*]}{.status.loadBalancer.ingress[0].ip}{\"\\n\"}{end}",
                       timeout=120).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def _received(nodes: list[NodeAddr]) -> dict[str, int]:
    out = frr.vtysh(bgp.ROUTER_DIR, "show bgp ipv6 unicast summary json", check=False).stdout
    peers = json.loads(out).get("peers", {}) if out.strip().startswith("{") else {}
    return {n.name: int(peers.get(n.ipv6, {}).get("pfxRcd", 0)) for n in nodes}


def _fib_routes() -> int:
    argv = procs.netns_cmd(bgp.ROUTER_NS, ["ip", "-6", "route", "show", "proto", "bgp"])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
    prefix = ADDRESSES.split("::")[0] + ":"
    return sum(1 for line in out.splitlines() if line.startswith(prefix))


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return round(total / 1024, 1)


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        here = todo.pop()
        for task in os.listdir(f"/proc/{here}/task") if os.path.isdir(f"/proc/{here}/task") else ():
            try:
                with open(f"/proc/{here}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                kids = []
            found += kids
            todo += kids
    return found


def _speaker_rss_mb(node: NodeAddr) -> float:
    entry = procs.running(f"speaker-{node.name}").get(f"speaker-{node.name}")
    return _rss_mb(_descendants(entry.pid)) if entry else 0.0  # the supervisor itself left out


def _frr_rss_mb(node: NodeAddr) -> float:
    pids = []
    for daemon in ("zebra", "bgpd", "bfdd"):
        try:
            pids.append(int((bgp.node_socket_dir(node) / f"{daemon}.pid").read_text().strip()))
        except (OSError, ValueError):
            continue
    return _rss_mb(pids)


def sync_figures(kube: Kube, count: int = 10_000, bound_s: float = 300.0) -> dict[str, Any]:
    """The sync part's figures for COUNT VIPs (the lab's router attached; its speakers restarted here)."""
    attached = lab.attach_bgp()
    nodes = load_state().live_nodes
    stop_speakers(nodes)
    kube.apply(*manifests())
    try:
        made = time.monotonic()
        _create_all(count, nodes)
        wait_for(lambda: _assigned(kube) >= count, timeout=bound_s, interval=3, what=f"{count} IPs assigned")
        print(f"sync: {count} Services and slices made and assigned in {time.monotonic() - made:.0f} s",
              file=sys.stderr)
        started = time.monotonic()
        for n in nodes:
            ironlb_procs.start_speaker(n.name)
        wait_for(lambda: min(_received(nodes).values()) >= count, timeout=bound_s / 2, interval=0.2,
                 what=f"{count} prefixes from every node at the router")
        rib_s = time.monotonic() - started
        wait_for(lambda: _fib_routes() >= count, timeout=bound_s / 5, interval=0.2, what="every route in the FIB")
        fib_s = time.monotonic() - started
        figures = {"sync_10k_s" if count == 10_000 else f"sync_{count}_s": round(rib_s, 2),
                   "sync_fib_s": round(fib_s, 2), "sync_vips": count,
                   "speaker_rss_mb": max(_speaker_rss_mb(n) for n in nodes),
                   "frr_rss_mb": max(_frr_rss_mb(n) for n in nodes)}
    finally:
        kube.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        for kind, name in (("bgpadvertisement", POOL), ("ipaddresspool", POOL), ("bgppeer", PEER)):
            kube.kubectl("delete", kind, name, "--ignore-not-found", "--wait=false", check=False)
        for n in nodes:
            if not procs.running(f"speaker-{n.name}"):
                ironlb_procs.start_speaker(n.name)
        if attached:
            lab.detach_bgp()
    return figures


def sync_part(kube: Kube, count: int = 10_000) -> dict[str, Any]:
    """sync_figures, or (when it could not finish) the figure as None with the reason: the run's other figures
    still count."""
    try:
        return sync_figures(kube, count)
    except (AssertionError, RuntimeError, client.ApiException) as exc:
        print(f"sync: not measured: {exc}", file=sys.stderr)
        return {"sync_10k_s": None, "sync_error": str(exc)[:300]}


def main() -> None:
    """This part alone (`python -m benchmarks._bgp_sync [VIPS]`), one JSON line."""
    started = time.monotonic()
    kube, _ = ensure_lab(nodes=3, ipv6=True)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    report({**sync_part(kube, count), "wall_s": round(time.monotonic() - started, 1)})


if __name__ == "__main__":
    main()
