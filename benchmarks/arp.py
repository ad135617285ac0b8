"""ARP reply latency of the speaker at 1k and 10k requests/s, against the kernel's own ARP reply
for a node address measured in the same run. Figures: p50_ms_1k, p99_ms_1k, p50_ms_10k, p99_ms_10k,
ratio_vs_kernel_p50 (speaker p50 / kernel p50 at 1k/s).
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks._lab import lab, report
from e2e.lab import workload
from e2e.lab.config import REPO
from e2e.testkit.testing import Kube, pool_manifests, wait_for

NAME = "bench-arp"


def load(ip: str, rate: int, duration: float = 2.0) -> dict:
    """Run the ARP load generator in the client namespace."""
    out = subprocess.run(["ip", "netns", "exec", "ilb-client", str(REPO / ".venv/bin/python"), "-m",
                          "e2e.probes.arpload", ip, "--rate", str(rate), "--duration", str(duration)],
                         capture_output=True, text=True, check=True, env={"PYTHONPATH": f"{REPO}/src:{REPO}"},
                         timeout=60)
    return json.loads(out.stdout.strip().splitlines()[-1])


def setup(kube: Kube) -> str:
    """A Service with a VIP announced by some node; return the VIP."""
    kube.apply(*pool_manifests(NAME, ["198.51.100.232/30"]))
    workload.delete(NAME)
    kube.deploy(NAME, replicas=1, nodes=["node-1"])
    kube.apply({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": NAME, "namespace": "default", "annotations": {"ironlb.io/address-pool": NAME}},
                "spec": {"type": "LoadBalancer", "selector": {"app": NAME},
                         "ports": [{"port": 80, "targetPort": 8080}]}})
    vip = wait_for(lambda: (kube.get("service", NAME)["status"].get("loadBalancer", {}).get("ingress")
                            or [{}])[0].get("ip"), what="VIP")
    wait_for(lambda: kube.curl("client", f"http://{vip}/"), what="VIP answering")
    return vip


def main() -> int:
    """Measure and print the figures."""
    kube = lab()
    vip = setup(kube)
    results = {}
    for rate in (1000, 10000):
        results[f"speaker_{rate}"] = load(vip, rate)
        results[f"kernel_{rate}"] = load("192.0.2.12", rate)
        for who in ("speaker", "kernel"):
            r = results[f"{who}_{rate}"]
            print(f"{who:8s} at {rate:5d}/s (achieved {r['achieved_rate']}/s): replies {r['replies']}/{r['sent']}, "
                  f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms", flush=True)
    kube.kubectl("delete", "service", NAME, "--wait=false")
    workload.delete(NAME)
    kube.kubectl("delete", "l2advertisement", NAME, "--ignore-not-found")
    kube.kubectl("delete", "ipaddresspool", NAME, "--ignore-not-found")
    s1, s10, k1 = results["speaker_1000"], results["speaker_10000"], results["kernel_1000"]
    report({"p50_ms_1k": s1["p50_ms"], "p99_ms_1k": s1["p99_ms"], "p50_ms_10k": s10["p50_ms"],
            "p99_ms_10k": s10["p99_ms"], "ratio_vs_kernel_p50": round(s1["p50_ms"] / k1["p50_ms"], 2),
            "kernel_p50_ms_1k": k1["p50_ms"], "kernel_p99_ms_1k": k1["p99_ms"],
            "kernel_p99_ms_10k": results["kernel_10000"]["p99_ms"],
            "replies_10k": f"{s10['replies']}/{s10['sent']}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
