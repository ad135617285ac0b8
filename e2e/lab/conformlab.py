"""What `up --kubelet --conformance` adds to the real-node lab so that it looks like a conformant cluster to the
upstream e2e specs: the cluster DNS (e2e.lab.clusterdns), the specs' images (e2e.lab.e2eimages) in every node,
and the e2e client's namespace (e2e.lab.testclient)."""

from __future__ import annotations

import time
from pathlib import Path

from e2e.lab import clusterdns, e2eimages, image, realnode, testclient
from e2e.lab.config import NodeAddr


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
    return round(time.monotonic() - started, 1)


def revive(node: NodeAddr) -> None:
    """What a revived node needs again: its route back to the e2e client (its images are still in its store)."""
    testclient.route_back(node)
