"""A node's death on real nodes (`up --kubelet`), as a client sees it: a Deployment with a pod per node behind a
LoadBalancer Service, `e2e.probes.connprobe` running in the client namespace from before the kill until the
window after it, and the node revived afterwards. Shared by `benchmarks.failover --kubelet` and
`e2e/test_node_death.py`; the figures come from `e2e.testkit.connections`."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from e2e.lab import lab, reallab
from e2e.lab.config import KUBECONFIG, REPO
from e2e.lab.state import Status, load_state
from e2e.lab.tools import bin_dir
from e2e.testkit.connections import WINDOW_S, Recording, parse
from e2e.testkit.testing import Kube, pool_manifests, wait_for

POLICIES = ("Cluster", "Local")
PORT = 8080
POOL_ANNOTATION = "ironlb.io/address-pool"


def real_lab(nodes: int = 3) -> Kube:
    """A running real-node lab of NODES with IronLB installed by the chart (reused if one runs, whole)."""
    state = load_state()
    if not (state.status == Status.READY and state.kubelet and state.nodes == nodes and state.ironlb
            and not state.killed):
        lab.up(nodes=nodes, kubelet=True)
    return Kube(kubeconfig=KUBECONFIG, bin_dir=bin_dir())


def service_manifest(name: str, pool: str, policy: str, pool_annotation: str = POOL_ANNOTATION) -> dict[str, Any]:
    """A LoadBalancer Service NAME from POOL (named by POOL_ANNOTATION), selecting app=NAME, with
    externalTrafficPolicy POLICY."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "annotations": {pool_annotation: pool}},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": policy, "selector": {"app": name},
                     "ports": [{"port": 80, "targetPort": PORT, "protocol": "TCP"}]}}


def serve(kube: Kube, name: str, addresses: str, policy: str, pools: Sequence[dict[str, Any]] = (),
          pool_annotation: str = POOL_ANNOTATION) -> str:
    """Pool NAME of ADDRESSES (IronLB's, unless POOLS gives another implementation's, named by POOL_ANNOTATION),
    a Deployment NAME with a pod on every node, and its Service; return the VIP."""
    kube.apply(*(pools or pool_manifests(name, [addresses])))
    nodes = kube.nodes
    reallab.deploy(kube.bin_dir, name, len(nodes), nodes, PORT, "default")
    kube.apply(service_manifest(name, name, policy, pool_annotation))
    return wait_for(lambda: (kube.get("service", name).get("status", {}).get("loadBalancer", {})
                             .get("ingress") or [{}])[0].get("ip"), timeout=60, what=f"ingress of {name}")


def unserve(kube: Kube, name: str) -> None:
    """Remove what `serve` made."""
    kube.kubectl("delete", "service", name, "--ignore-not-found")
    reallab.delete(kube.bin_dir, name)
    kube.kubectl("delete", "l2advertisement", name, "--ignore-not-found")
    kube.kubectl("delete", "ipaddresspool", name, "--ignore-not-found")


def announcer(kube: Kube, name: str) -> str | None:
    """The node the Service's ironlb.io/Announced condition names, if it is True."""
    conds = kube.get("service", name).get("status", {}).get("conditions") or []
    cond = next((c for c in conds if c["type"] == "ironlb.io/Announced" and c["status"] == "True"), None)
    match = re.search(r"node (node-\d+)", cond["message"]) if cond else None
    return match.group(1) if match else None


def pods_by_node(kube: Kube, app: str) -> dict[str, str]:
    """Node -> the Ready pod of APP on it (pods being deleted left out)."""
    return {p["spec"]["nodeName"]: p["metadata"]["name"] for p in reallab.app_pods(kube.bin_dir, app, "default")
            if reallab.pod_ready(p) and not p["metadata"].get("deletionTimestamp")}


def pod_answers(kube: Kube, vip: str, pod: str, timeout: float) -> float | None:
    """Seconds until POD answers a GET through VIP from the client, or None if it did not within TIMEOUT."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if kube.curl("client", f"http://{vip}/", timeout=0.5) == pod:
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def wait_serving(kube: Kube, name: str, vip: str, policy: str, timeout: float = 120,
                 announced: Callable[[Kube, str], str | None] = announcer) -> str:
    """Wait until every node has a Ready pod, the Service is announced (the node ANNOUNCED names, IronLB's
    condition unless given) and (Cluster) every pod answers through the VIP, or (Local) the announcing node's pod
    does; return the announcing node."""
    nodes = kube.nodes
    wait_for(lambda: len(pods_by_node(kube, name)) == len(nodes), timeout=timeout, interval=1,
             what=f"a Ready pod of {name} on every node")
    node = wait_for(lambda: announced(kube, name), timeout=timeout, what=f"{name} announced")
    pods = pods_by_node(kube, name)
    for pod in (pods.values() if policy == "Cluster" else [pods[node]]):
        if pod_answers(kube, vip, pod, timeout) is None:
            raise AssertionError(f"{pod} did not answer through {vip} within {timeout} s")
    return node


def probe(vip: str, duration: float) -> subprocess.Popen[str]:
    """Start `e2e.probes.connprobe` (its defaults) at VIP:80 in the client namespace for DURATION seconds."""
    return subprocess.Popen(["ip", "netns", "exec", lab.namespace_of("client"), str(REPO / ".venv/bin/python"),
                             "-m", "e2e.probes.connprobe", vip, "--duration", str(duration)],
                            stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": f"{REPO}/src:{REPO}"})


def record_kill(vip: str, node: str, before_s: float = 2.0, after_s: float = WINDOW_S) -> tuple[Recording, float]:
    """Probe VIP from BEFORE_S before killing NODE until AFTER_S after; return what the probe recorded and the
    monotonic time the node was cut off. The node stays dead: revive it with `revive`."""
    # Slack past the window: the kill itself takes a moment after the cut, and the window is counted from the cut.
    prober = probe(vip, before_s + after_s + 3)
    try:
        time.sleep(before_s)  # the long-lived connections open and the new ones settle before the kill
        killed = lab.kill_node(node)
        out, _ = prober.communicate(timeout=before_s + after_s + 60)
    finally:
        if prober.poll() is None:
            prober.kill()
            prober.wait()
    return parse(out.splitlines()), killed


def revive(kube: Kube, node: str, vip: str, pod: str, timeout: float = 120, policy: str = "Cluster",
           app: str = "") -> float | None:
    """Revive NODE; return the seconds from the revive until its pod POD (of APP) is back in service (None if
    not within TIMEOUT): answering through VIP (Cluster), or Ready again (Local: the IP stays on the node it
    moved to rather than moving back, so only that node's pod answers through it)."""
    started = time.monotonic()
    lab.revive_node(node)
    left = timeout - (time.monotonic() - started)
    if policy == "Local":
        while time.monotonic() - started < timeout:
            if pods_by_node(kube, app).get(node) == pod:
                return time.monotonic() - started
            time.sleep(1.0)
        return None
    return None if pod_answers(kube, vip, pod, left) is None else time.monotonic() - started


def node_ready(kube: Kube, node: str) -> bool:
    """True if NODE's kubelet reports it Ready."""
    conds = json.loads(kube.kubectl("get", "node", node, "-o", "json").stdout)["status"].get("conditions", [])
    ready = next((c for c in conds if c["type"] == "Ready"), {})
    return ready.get("status") == "True" and ready.get("reason") == "KubeletReady"
