"""Datapath: a VIP against the pod's own IP, in both forwarding modes, from the client namespace.

One pod on node-2; a Service from a KubeProxy pool and one from a NodePort pool select it. The
baseline is the pod IP reached directly (a route to node-2's pod subnet is added to the client for
the run and removed after). Latency: p50 of sequential GETs on new connections; throughput: MB/s
of one bulk GET; each the median of ROUNDS runs. Ratios are VIP / direct (latency: > 1 is slower;
throughput: < 1 is slower). Figures: kubeproxy_throughput_ratio, nodeport_throughput_ratio,
kubeproxy_latency_ratio, nodeport_latency_ratio (and the raw numbers behind them).
"""

from __future__ import annotations

import json
import statistics
import sys

from benchmarks._lab import lab, report
from e2e.lab import workload
from e2e.lab.config import REPO
from e2e.testkit.testing import Kube, pool_manifests, wait_for

NAME = "bench-dp"
POD_NODE = "node-2"
POD_SUBNET, POD_GATEWAY = "198.19.2.0/24", "192.0.2.12"
ROUNDS = 3
REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
BULK = 256 << 20
MODES = {"kubeproxy": ("KubeProxy", "198.51.100.224/30"), "nodeport": ("NodePort", "198.51.100.228/30")}


def setup(kube: Kube) -> dict[str, str]:
    """Pools, advertisements, the pod and one Service per mode; return target name -> host."""
    workload.delete(NAME)
    kube.deploy(NAME, replicas=1, nodes=[POD_NODE])
    targets = {"direct": wait_for(lambda: kube.get("pod", f"{NAME}-0")["status"].get("podIP"), what="pod IP")}
    for mode, (forwarding, cidr) in MODES.items():
        name = f"{NAME}-{mode}"
        kube.apply(*pool_manifests(name, [cidr], forwarding=forwarding),
                   {"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": name, "namespace": "default", "annotations": {"ironlb.io/address-pool": name}},
                    "spec": {"type": "LoadBalancer", "selector": {"app": NAME},
                             "ports": [{"port": 80, "targetPort": 8080}]}})
        targets[mode] = wait_for(lambda name=name: (kube.get("service", name)["status"].get("loadBalancer", {})
                                                    .get("ingress") or [{}])[0].get("ip"), what=f"VIP of {name}")
    return targets


def teardown(kube: Kube) -> None:
    """Remove everything setup made."""
    for mode in MODES:
        name = f"{NAME}-{mode}"
        kube.kubectl("delete", "service", name, "--wait=false", check=False)
        kube.kubectl("delete", "l2advertisement", name, "--ignore-not-found", check=False)
        kube.kubectl("delete", "ipaddresspool", name, "--ignore-not-found", check=False)
    workload.delete(NAME)


def measure(kube: Kube, *args: str) -> dict[str, float]:
    """Run e2e.probes.httpbench in the client namespace."""
    res = kube.exec("client", "env", f"PYTHONPATH={REPO / 'src'}:{REPO}", str(REPO / ".venv/bin/python"), "-m",
                    "e2e.probes.httpbench", *args, timeout=300, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    """Measure every path and print the figures."""
    kube = lab()
    kube.exec("client", "ip", "route", "replace", POD_SUBNET, "via", POD_GATEWAY, check=True)
    try:
        targets = setup(kube)
        for name, host in targets.items():
            port = "8080" if name == "direct" else "80"
            wait_for(lambda host=host, port=port: kube.curl("client", f"http://{host}:{port}/"), timeout=30,
                     what=f"{name} path answers")
        p50, mbps = {}, {}
        for name, host in targets.items():
            port = "8080" if name == "direct" else "80"
            p50[name] = statistics.median(measure(kube, "latency", host, port, "--requests", str(REQUESTS))["p50_ms"]
                                          for _ in range(ROUNDS))
            mbps[name] = statistics.median(measure(kube, "throughput", host, port, "--bytes", str(BULK))["mb_per_s"]
                                           for _ in range(ROUNDS))
            print(f"{name:10s} {host:15s} p50 {p50[name]:.3f} ms  {mbps[name]:.0f} MB/s", flush=True)
    finally:
        kube.exec("client", "ip", "route", "del", POD_SUBNET)
        teardown(kube)
    figures = {f"{mode}_latency_ratio": round(p50[mode] / p50["direct"], 3) for mode in MODES}
    figures |= {f"{mode}_throughput_ratio": round(mbps[mode] / mbps["direct"], 3) for mode in MODES}
    figures |= {f"{name}_p50_ms": round(v, 3) for name, v in p50.items()}
    figures |= {f"{name}_mb_per_s": v for name, v in mbps.items()}
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
