"""`make demo`: bring the lab up and walk the Service chain, ending at a LoadBalancer's EXTERNAL-IP."""

from __future__ import annotations

import subprocess
import sys
import time

from e2e.lab import lab
from e2e.lab.state import load_state
from e2e.testkit.testing import Kube, ensure_lab, wait_for

POOL = """apiVersion: ironlb.io/v1beta1
kind: IPAddressPool
metadata: {name: demo}
spec:
  addresses: ["203.0.113.10-203.0.113.50"]
---
apiVersion: ironlb.io/v1beta1
kind: L2Advertisement
metadata: {name: demo}
spec:
  ipAddressPools: [demo]
"""
SERVICE = """apiVersion: v1
kind: Service
metadata: {name: demo, namespace: default}
spec:
  type: %s
  selector: {app: demo}
  ports: [{port: 80, targetPort: 8080, protocol: TCP}]
"""


def say(text: str) -> None:
    """Print a step heading."""
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def show(kube: Kube, *args: str) -> None:
    """Print a kubectl command and its output."""
    print(f"$ kubectl {' '.join(args)}", flush=True)
    print(kube.kubectl(*args).stdout, end="", flush=True)


def curl(kube: Kube, url: str, tries: int = 4) -> None:
    """curl URL from the client namespace a few times, printing each answer."""
    for _ in range(tries):
        body = wait_for(lambda: kube.curl("client", url), timeout=20, what=url)
        print(f"client$ curl {url}  ->  {body}", flush=True)


def main() -> int:
    """Run the demo."""
    say("Bringing up the lab: etcd, kube-apiserver, kube-controller-manager, 3 nodes with kube-proxy")
    started = time.monotonic()
    kube, _ = ensure_lab(nodes=3)
    print(f"lab ready in {time.monotonic() - started:.1f} s; ironlb running: "
          f"{load_state().ironlb}")
    show(kube, "get", "nodes", "-o", "wide")
    say("Deploying the 'demo' workload: 2 pods answering HTTP with their name")
    lab.workload.delete("demo")
    kube.kubectl("delete", "service", "demo", "--ignore-not-found")
    kube.deploy("demo", replicas=2, nodes=["node-1", "node-2"])
    ironlb = load_state().ironlb
    if not ironlb:
        kube.apply(SERVICE % "NodePort")
        show(kube, "get", "svc", "demo", "-o", "wide")
        port = kube.get("service", "demo")["spec"]["ports"][0]["nodePort"]
        say(f"NodePort {port} answers on every node's IP, from the external client")
        curl(kube, f"http://192.0.2.13:{port}/")
    else:
        say("Creating an IPAddressPool and an L2Advertisement")
        kube.apply(POOL)
        show(kube, "get", "ipaddresspools")
        say("Creating a LoadBalancer Service: IronLB assigns an EXTERNAL-IP")
        kube.apply(SERVICE % "LoadBalancer")
        wait_for(lambda: kube.get("service", "demo")["status"].get("loadBalancer", {}).get("ingress"),
                 timeout=30, what="EXTERNAL-IP")
        show(kube, "get", "svc", "demo", "-o", "wide")
        vip = kube.get("service", "demo")["status"]["loadBalancer"]["ingress"][0]["ip"]
        say(f"The client reaches {vip} over L2: a speaker answers ARP, kube-proxy takes it to a pod")
        curl(kube, f"http://{vip}/")
        print(subprocess.run(["ip", "netns", "exec", "ilb-client", "ip", "neigh", "show", vip],
                             capture_output=True, text=True).stdout, end="")
    say("Continue")
    print("  export KUBECONFIG=.lab/kubeconfig        # or: .venv/bin/python -m e2e.lab kubectl get svc -A")
    print("  .venv/bin/python -m e2e.lab exec client -- curl -s http://<EXTERNAL-IP>/")
    print("  .venv/bin/python -m e2e.lab node kill node-1   # watch another node take over")
    print("  .venv/bin/python -m e2e.lab status")
    print("Tear down: .venv/bin/python -m e2e.lab down   (or: make lab-down)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
