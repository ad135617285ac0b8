"""Shared helpers for lab benchmarks: a dual-stack lab, bulk Service creation, timing."""

from __future__ import annotations

import statistics
from typing import Any

from kubernetes import client, config

from benchmarks._figures import percentile, report
from e2e.lab.config import KUBECONFIG
from e2e.testkit.testing import Kube, ensure_lab


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


__all__ = ["core_api", "lab", "percentile", "report", "statistics", "v6_service"]
