"""Taking over from MetalLB with no IP changed: MetalLB serves 20 Services with traffic, `ironlb
migrate metallb --apply`, MetalLB stops, IronLB starts; every IP stays and answers the client again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks._compare_impls import METALLB, start
from e2e.lab import ironlb_procs, metallb, procs, workload
from e2e.lab.config import KUBECONFIG, REPO
from e2e.testkit.testing import Kube, assigned_ips, ingress_ips, wait_for

pytestmark = pytest.mark.lab
NS = "takeover"
APP = "takeover"
POOL = "takeover"
COUNT = 20
NAMES = [f"svc-{i}" for i in range(COUNT)]
GAP_BOUND_S = 30.0  # generous for a loaded 2-core machine; the measured gap is printed


def service(i: int) -> dict:
    """A Service written for MetalLB: its pool by the metallb.io annotation."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"svc-{i}", "namespace": NS, "annotations": {"metallb.io/address-pool": POOL}},
            "spec": {"type": "LoadBalancer", "selector": {"app": APP}, "ports": [{"port": 80, "targetPort": 8080}]}}


def ips(kube: Kube) -> dict[str, str | None]:
    """Each Service's ingress IP (None while it has none)."""
    return ingress_ips(kube, NS, NAMES)


def answers(kube: Kube, ip: str) -> bool:
    """The client reaches IP from a fresh ARP exchange (no stale neighbour entry helps)."""
    kube.exec("client", "ip", "neigh", "flush", "to", ip)
    return bool(kube.curl("client", f"http://{ip}/", timeout=0.5))


@pytest.fixture
def metallb_serving(kube: Kube) -> Iterator[dict[str, str]]:
    """MetalLB alone, serving COUNT Services from one pool, each answering the client."""
    start(METALLB, kube)
    kube.kubectl("create", "namespace", NS)
    kube.deploy(APP, replicas=3, namespace=NS)
    try:
        kube.apply(*METALLB.pool(POOL, ["203.0.113.64/27"]))
        kube.apply(*[service(i) for i in range(COUNT)])
        before = wait_for(lambda: assigned_ips(kube, NS, NAMES), timeout=60,
                          what="MetalLB assigning every Service")
        for ip in before.values():
            wait_for(lambda ip=ip: answers(kube, ip), timeout=30, what=f"{ip} answering through MetalLB")
        yield before
    finally:
        procs.stop_all(metallb.PROC_PREFIX)
        metallb.stop()
        if not procs.running("operator"):
            ironlb_procs.start_ironlb()
        kube.kubectl("delete", "namespace", NS, "--wait=true", timeout=180, check=False)
        workload.delete(APP)
        kube.kubectl("delete", "l2advertisements.ironlb.io", POOL, "--ignore-not-found", check=False)
        kube.kubectl("delete", "ipaddresspools.ironlb.io", POOL, "--ignore-not-found", check=False)


def test_takeover_from_metallb_changes_no_ip(kube: Kube, metallb_serving: dict[str, str]) -> None:
    before = metallb_serving
    migrate = subprocess.run([str(Path(sys.executable).parent / "ironlb"), "migrate", "metallb", "--apply"],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "KUBECONFIG": str(KUBECONFIG), "PYTHONPATH": str(REPO / "src")})
    assert migrate.returncode == 0, migrate.stderr
    kube.get("ipaddresspools.ironlb.io", POOL, None)  # the migrated pool exists
    procs.stop_all(metallb.PROC_PREFIX)  # MetalLB scaled down: nobody announces from here on
    stopped = time.monotonic()
    ironlb_procs.start_ironlb()
    back: dict[str, float] = {}
    deadline = stopped + 120
    while len(back) < COUNT and time.monotonic() < deadline:
        for name, ip in before.items():
            if name not in back and answers(kube, ip):
                back[name] = time.monotonic() - stopped
    gap = max(back.values(), default=float("inf"))
    print(f"takeover gap: every Service answering {gap:.2f} s after MetalLB stopped "
          f"(first {min(back.values(), default=float('inf')):.2f} s)")
    assert len(back) == COUNT, f"never answered through IronLB: {sorted(set(before) - set(back))}"
    assert gap < GAP_BOUND_S
    wait_for(lambda: all(kube.get("service", n, NS)["metadata"].get("annotations", {})
                         .get("ironlb.io/allocated-from-pool") == POOL for n in before), timeout=30,
             what="IronLB recording every Service as its own")
    assert ips(kube) == before, "an IP changed in the takeover"
    # MetalLB adds no cleanup finalizer: IronLB adds it to each Service it took over, on its first reconcile.
    wait_for(lambda: all("service.kubernetes.io/load-balancer-cleanup" in (kube.get("service", n, NS)["metadata"]
                                                                           .get("finalizers") or []) for n in before),
             timeout=30, what="the cleanup finalizer on every Service taken over")
