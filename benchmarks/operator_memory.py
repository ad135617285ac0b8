"""The operator's Service store against tenant input: RSS of its real Service informer and reconciler,
listing Services that each carry a large annotation IronLB never reads, half of them not LoadBalancers.

    python -m benchmarks.operator_memory [COUNT] [ANNOTATION_KB] [--keep]

The Services are created in the lab; a fresh process then runs the operator's informer (as
startup.restored builds it) into a reconciler and reports its RSS before the list and once synced.
Figures: services, annotation_kb, baseline_mb, synced_mb, store_mb, per_service_kb.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._figures import report

NAMESPACE = "bench-opmem"
POOL = "bench-opmem"


def rss_mb() -> float:
    """This process's resident set size in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def service(i: int, blob: str) -> dict[str, Any]:
    """Service I: a LoadBalancer from the bench pool when I is even, else ClusterIP; both carry BLOB."""
    spec: dict[str, Any] = {"ports": [{"port": 80, "targetPort": 8080}]}
    annotations = {"example.com/blob": blob}
    if i % 2 == 0:
        spec.update(type="LoadBalancer", ipFamilies=["IPv6"], ipFamilyPolicy="SingleStack",
                    allocateLoadBalancerNodePorts=False)
        annotations["ironlb.io/address-pool"] = POOL
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"s-{i}", "labels": {"app": f"s-{i}"}, "annotations": annotations}, "spec": spec}


async def measure() -> dict[str, float]:
    """In this process: the operator's informer into a reconciler; RSS before and after the list."""
    from ironlb.common import kubeapi
    from ironlb.operator import startup
    from ironlb.operator.reconciler import Reconciler

    reconciler = Reconciler(writer=None, lb_class=None)  # type: ignore[arg-type]  # never writes: not restored
    kube = kubeapi.connect(pool_size=2)
    gc.collect()
    baseline = rss_mb()
    build = getattr(startup, "service_informer", None) or _informer_before_service_informer
    informer = build(kube, reconciler)
    informer.start()
    await informer.synced.wait()
    await asyncio.sleep(0.5)  # the handed-on events run
    informer.stop()
    gc.collect()
    return {"baseline_mb": baseline, "synced_mb": rss_mb(), "services_known": len(reconciler.state.services)}


def _informer_before_service_informer(kube: Any, reconciler: Any) -> Any:
    """The Service informer as startup.restored built it before service_informer existed (to measure
    older versions' src with this benchmark: PYTHONPATH=OLD/src:. python -m benchmarks.operator_memory --measure)."""
    from ironlb.common.informer import Informer, ResourceListWatch
    from ironlb.common.kubeapi import SERVICES
    from ironlb.operator import startup

    return Informer("services", ResourceListWatch(kube, SERVICES),
                    lambda event, obj: reconciler.service_event(obj, deleted=event == "DELETED"),
                    asyncio.get_running_loop(), transform=startup.slim_service)


def main() -> int:
    """Create the Services in the lab, measure in a fresh process, print the figures."""
    if sys.argv[1:2] == ["--measure"]:
        report(asyncio.run(measure()))
        return 0
    from benchmarks._lab import core_api, lab
    from e2e.lab.config import KUBECONFIG
    from e2e.testkit.testing import pool_manifest

    args = [a for a in sys.argv[1:] if a != "--keep"]
    count = int(args[0]) if args else 1000
    kb = int(args[1]) if len(args) > 1 else 200
    kube = lab()
    kube.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=600)
    kube.kubectl("create", "namespace", NAMESPACE)
    kube.apply(pool_manifest(POOL, ["2001:db8:ffff:c::/112"], autoAssign=False))
    api, blob = core_api(), "x" * (kb * 1024)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: api.create_namespaced_service(NAMESPACE, service(i, blob)), range(count)))
    print(f"created {count} Services with a {kb} KB annotation in {time.monotonic() - started:.1f} s")
    out = subprocess.run([sys.executable, "-m", "benchmarks.operator_memory", "--measure"], check=True,
                         capture_output=True, text=True, env={**os.environ, "KUBECONFIG": str(KUBECONFIG)})
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    store = figures["synced_mb"] - figures["baseline_mb"]
    report({"services": count, "annotation_kb": kb, **figures, "store_mb": round(store, 1),
            "per_service_kb": round(store * 1024 / count, 1)})
    if "--keep" not in sys.argv:
        kube.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
        kube.kubectl("delete", "ipaddresspool", POOL, "--wait=false")
    return 0


if __name__ == "__main__":
    sys.exit(main())
