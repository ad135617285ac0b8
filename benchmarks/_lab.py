"""Shared helpers for lab benchmarks: a dual-stack lab, bulk Service creation, timing."""

from __future__ import annotations

import json
import statistics
from typing import Any

from kubernetes import client, config

from e2e.lab.config import KUBECONFIG
from e2e.lab.testing import Kube, ensure_lab


def lab() -> Kube:
    """A running dual-stack lab with IronLB (reused if one runs)."""
    kube, _ = ensure_lab(nodes=3, ipv6=True)
    return kube


def core_api(pool: int = 32) -> client.CoreV1Api:
    """A CoreV1Api with a connection pool big enough for bursts."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(KUBECONFIG), client_configuration=cfg)
    cfg.connection_pool_maxsize = pool
    return client.CoreV1Api(client.ApiClient(cfg))


def v6_service(name: str, pool: str, selector: bool = True) -> dict[str, Any]:
    """An IPv6 single-stack LoadBalancer Service from POOL (IPv6 pools are big enough for 10k)."""
    spec: dict[str, Any] = {"type": "LoadBalancer", "ipFamilies": ["IPv6"], "ipFamilyPolicy": "SingleStack",
                            "allocateLoadBalancerNodePorts": False, "ports": [{"port": 80, "targetPort": 8080}]}
    if selector:
        spec["selector"] = {"app": name}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "annotations": {"ironlb.io/address-pool": pool}}, "spec": spec}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def report(figures: dict[str, Any]) -> None:
    """Print the final JSON line of figures."""
    print(json.dumps(figures, sort_keys=True))


__all__ = ["core_api", "lab", "percentile", "report", "statistics", "v6_service"]
