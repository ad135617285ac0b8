"""MetalLB on real nodes as `benchmarks.compare --kubelet` runs it: IronLB's release uninstalled, MetalLB's own
manifest applied (e2e.lab.realmetallb), a metallb.io pool and L2Advertisement. Its controller and speakers run
as pods, a Service gets an address, the node MetalLB names in its ServiceL2Status is the one the client reaches
the address through, and IronLB installs again afterwards with nothing of MetalLB left."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks._compare_impls import answering_node
from benchmarks._compare_kubelet import metallb_announcer
from e2e.lab import lab, realmetallb
from e2e.lab.config import KUBECONFIG
from e2e.lab.state import load_state
from e2e.lab.tools import bin_dir
from e2e.testkit import nodedeath
from e2e.testkit.testing import Kube

# Long: a real-node lab of its own; `make test` keeps MetalLB beside IronLB in test_takeover and test_compare.
pytestmark = [pytest.mark.lab, pytest.mark.kubelet, pytest.mark.long]
NODES = 2
NAME = "mlb"
ADDRESSES = "203.0.113.216/29"


@pytest.fixture(scope="module")
def metallb() -> Iterator[Kube]:
    """Two real nodes with MetalLB installed in IronLB's place; taken down afterwards."""
    lab.up(nodes=NODES, kubelet=True)
    try:
        kube = Kube(kubeconfig=KUBECONFIG, bin_dir=bin_dir())
        realmetallb.install(kube.bin_dir)
        yield kube
    finally:
        lab.down()


def test_one_load_balancer_at_a_time(metallb: Kube) -> None:
    out = metallb.kubectl("get", "pods", "-n", "ironlb-system", "-o", "name").stdout
    assert out.strip() == "", f"IronLB's pods are left: {out}"
    assert load_state().metallb and not load_state().ironlb


def test_the_announcing_node_metallb_names_is_the_one_the_client_reaches(metallb: Kube) -> None:
    vip = nodedeath.serve(metallb, NAME, ADDRESSES, "Cluster", pools=realmetallb.pool(NAME, [ADDRESSES]),
                          pool_annotation="metallb.io/address-pool")
    named = nodedeath.wait_serving(metallb, NAME, vip, "Cluster", announced=metallb_announcer)
    assert answering_node(metallb, vip) == named


def test_ironlb_installs_again_after_metallb(metallb: Kube) -> None:
    realmetallb.back_to_ironlb(metallb.bin_dir)
    assert not load_state().metallb and load_state().ironlb
    crds = metallb.kubectl("get", "crd", "-o", "name").stdout.split()
    assert not [c for c in crds if c.endswith(".metallb.io")], "MetalLB's CRDs are left"
