"""What `up --kubelet --conformance` adds to the real-node lab so that it looks like a conformant cluster to the
upstream e2e specs: the cluster DNS (e2e.lab.clusterdns), the specs' images (e2e.lab.e2eimages) in every node,
and the e2e client's namespace (e2e.lab.testclient)."""

from __future__ import annotations

import time
from pathlib import Path

from e2e.lab import clusterdns, e2eimages, image, netns, realnode, testclient
from e2e.lab.config import POOL_RANGES_V4, NodeAddr


def build_images(kube_bins: Path) -> tuple[list[Path], float]:
    """Build (or find cached) CoreDNS's, agnhost's and pause's images; return their archives and the seconds."""
    started = time.monotonic()
    archives = e2eimages.build_all(kube_bins)
    return archives, round(time.monotonic() - started, 1)


def attach(bin_dir: Path, nodes: list[NodeAddr], archives: list[Path]) -> float:
    """Import the images into every node, install the cluster DNS, create the e2e client; return the seconds."""
    started = time.monotonic()
    for n in nodes:
        for archive in archives:
            image.import_into(realnode.containerd_socket(n), archive)
    clusterdns.install(bin_dir, e2eimages.coredns_image(e2eimages.coredns_binary()))
    testclient.create(nodes)
    for n in nodes:
        vip_routes(n)
    return round(time.monotonic() - started, 1)


def vip_routes(node: NodeAddr) -> None:
    """The pool ranges on-link on the node's segment, as a node's gateway on a user's LAN would reach them.

    The lab's nodes have no default route. With `ipMode: VIP` kube-proxy catches a pod's traffic to a VIP in
    its own node, but with `ipMode: Proxy` (NodePort forwarding) it leaves it to the network, as it leaves it to
    a cloud's load balancer: the node must be able to send it to the announcing node."""
    for cidr in POOL_RANGES_V4:
        netns.ip("route", "replace", cidr, "dev", "eth0", netns=node.netns)


def revive(node: NodeAddr) -> None:
    """What a revived node needs again: its routes to the e2e client and the pools (its images are still in its
    store)."""
    testclient.route_back(node)
    vip_routes(node)
