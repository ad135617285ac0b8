"""The lab with real nodes (`up --kubelet`): the control plane gains kube-scheduler and the workload
controllers, every node runs containerd and a kubelet, and IronLB is what `helm install` makes of
the chart and the image built from the repo's Dockerfile. Nothing of IronLB runs outside a pod."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from e2e.lab import clusterdns, conformlab, control_plane, image, kube, kubeproxy, network, procs, realnode, tools
from e2e.lab.config import KUBECONFIG, REPO, NodeAddr, node_named
from e2e.lab.state import load_state

RELEASE = "ironlb"
NAMESPACE = "ironlb-system"
HELM_VALUES = ("image.repository=lab.ironlb.io/ironlb", "image.tag=lab", "image.pullPolicy=Never",
               "logFormat=text")


def start_control_plane(bin_dir: Path, all_nodes: list[NodeAddr], ipv6: bool) -> None:
    """etcd, kube-apiserver (reaching kubelets by name), kube-controller-manager and kube-scheduler."""
    control_plane.start_etcd(bin_dir)
    control_plane.start_apiserver(bin_dir, ipv6, kubelet_hosts=kubelet_hosts(all_nodes))
    control_plane.start_controller_manager(bin_dir, ipv6, real_nodes=True)
    control_plane.start_scheduler(bin_dir)


def kubelet_hosts(all_nodes: list[NodeAddr]) -> dict[str, str]:
    """Node name -> the address its kubelet serves on (the management segment)."""
    return {n.name: n.mgmt_ipv4 for n in all_nodes}


def start_nodes(bin_dir: Path, all_nodes: list[NodeAddr], ipv6: bool, cluster_dns: str | None = None) -> None:
    """Create each Node with its pod CIDR (the kubelet takes it over), then boot the nodes (their pods resolving
    names through CLUSTER_DNS if given)."""
    api = kube.core_api()
    for n in all_nodes:
        kube.create_node(api, n, ipv6)
    for n in all_nodes:
        kubeproxy.start(n, bin_dir, ipv6)
        realnode.boot(n, bin_dir, ipv6, cluster_dns)
    wait_nodes_ready(bin_dir, [n.name for n in all_nodes])


def wait_nodes_ready(bin_dir: Path, names: list[str], timeout: float = 120) -> None:
    """Wait until each kubelet reports its Node Ready."""
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        nodes = json.loads(tools.kubectl("get", "nodes", "-o", "json", bins=bin_dir).stdout)["items"]
        for n in nodes:
            ready = [c for c in n["status"].get("conditions", []) if c["type"] == "Ready"]
            by_kubelet = ready and ready[0].get("reason") == "KubeletReady" and ready[0]["status"] == "True"
            if by_kubelet:
                pending.discard(n["metadata"]["name"])
        time.sleep(0.5)
    if pending:
        raise RuntimeError(f"kubelets did not report Ready: {sorted(pending)} (see .lab/logs/kubelet-*.log)")


def helm_install(bin_dir: Path, *extra_sets: str, timeout: float = 180) -> float:
    """`helm install ironlb charts/ironlb -n ironlb-system --create-namespace` with the lab image;
    return the seconds until every IronLB pod is Ready."""
    started = time.monotonic()
    sets = [a for s in (*HELM_VALUES, *extra_sets) for a in ("--set", s)]
    res = subprocess.run([str(bin_dir / "helm"), f"--kubeconfig={KUBECONFIG}", "install", RELEASE,
                          str(REPO / "charts" / "ironlb"), "-n", NAMESPACE, "--create-namespace", *sets],
                         capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"helm install: {res.stderr.strip()}")
    wait_ironlb_ready(bin_dir, timeout)
    return round(time.monotonic() - started, 1)


def ironlb_pods(bin_dir: Path) -> list[dict[str, Any]]:
    """The IronLB pods as the API reports them."""
    out = tools.kubectl("get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}",
                        "-o", "json", bins=bin_dir).stdout
    return json.loads(out)["items"]


def pod_ready(pod: dict[str, Any]) -> bool:
    """True if the pod runs and its Ready condition (its probes) says True."""
    conds = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
    return pod.get("status", {}).get("phase") == "Running" and conds.get("Ready") == "True"


def wait_ironlb_ready(bin_dir: Path, timeout: float = 300) -> list[dict[str, Any]]:
    """Wait until the operator and a speaker per live node are Running and Ready."""
    want = 1 + len(live_nodes())
    deadline = time.monotonic() + timeout
    pods: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        pods = ironlb_pods(bin_dir)
        if len([p for p in pods if pod_ready(p)]) >= want:
            return pods
        time.sleep(1)
    summary = {p["metadata"]["name"]: p.get("status", {}).get("phase") for p in pods}
    raise RuntimeError(f"IronLB pods not Ready after {timeout} s: {summary}")


def live_nodes() -> list[str]:
    """Nodes that are not killed."""
    return [n.name for n in load_state().live_nodes]


def kill_node(node: NodeAddr) -> float:
    """Cut the node's links, then SIGKILL everything on it: kube-proxy, kubelet, containerd, shims, containers.
    Returns the monotonic time its node-segment port went down, the moment clients lose it."""
    cut = network.cut_node(node)
    procs.stop(kubeproxy.proc_name(node), sig=9, timeout=2)
    realnode.kill(node)
    return cut


def revive_node(node: NodeAddr, all_nodes: list[NodeAddr], bin_dir: Path, ipv6: bool) -> None:
    """Boot a killed node again, as after a reboot: fresh nftables and conntrack, then its services."""
    network.forget_kernel_state(node)
    network.reconnect_node(node, all_nodes, ipv6)
    kubeproxy.start(node, bin_dir, ipv6)
    realnode.masquerade_to_management(node)
    realnode.start_containerd(node, ipv6)  # its images are still in its store
    conformance = load_state().conformance
    realnode.start_kubelet(node, bin_dir, ipv6, clusterdns.CLUSTER_DNS_IP if conformance else None)
    if conformance:
        conformlab.revive(node)


def ensure_images(bin_dir: Path, frr: bool = False) -> dict[str, float]:
    """Build the lab's images when missing or older than the tree (and the FRR image if FRR)."""
    return image.ensure(bin_dir, frr=frr)


def import_frr_image(nodes: list[NodeAddr]) -> None:
    """Import the FRR image (`up --bgp`) into each node's containerd, for the speaker's frr container."""
    for n in nodes:
        image.import_into(realnode.containerd_socket(n), image.FRR_ARCHIVE)


def frr_chart_values() -> tuple[str, ...]:
    """`--set` values for BGP mode: the speaker Pods get the chart's frr container, with the lab's FRR image
    (imported into every node, never pulled)."""
    return ("speaker.bgp.enabled=true", f"speaker.bgp.frrImage={image.FRR_IMAGE}",
            "speaker.bgp.frrImagePullPolicy=Never")


def _podserver_configmap(namespace: str) -> dict[str, Any]:
    """The pod server's source as a ConfigMap: workload pods run it from the IronLB image's Python."""
    source = (REPO / "e2e" / "probes" / "podserver.py").read_text()
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "lab-podserver", "namespace": namespace},
            "data": {"podserver.py": source}}


DRAIN_S = 3.0  # how long a lab pod serves after SIGTERM


def deployment_manifest(app: str, replicas: int, node_names: list[str], port: int, namespace: str) -> dict[str, Any]:
    """A Deployment of HTTP pods answering with their pod name, spread over `node_names`."""
    labels = {"app": app}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {
                # A workload that stops gracefully, as the Kubernetes docs ask: it serves for DRAIN_S after
                # SIGTERM while its endpoint is terminating, so load balancers can move away first.
                "terminationGracePeriodSeconds": int(DRAIN_S) + 5,
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": node_names}]}]}}},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                               "whenUnsatisfiable": "DoNotSchedule",
                                               "labelSelector": {"matchLabels": labels}}],
                "containers": [{
                    "name": "http", "image": image.IMAGE, "imagePullPolicy": "Never",
                    "command": ["python3", "/podserver/podserver.py", "--name", "$(POD_NAME)", "--port", str(port),
                                "--drain-seconds", str(DRAIN_S)],
                    "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "ports": [{"name": "http", "containerPort": port}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": port}, "periodSeconds": 1},
                    "volumeMounts": [{"name": "src", "mountPath": "/podserver"}],
                }],
                "volumes": [{"name": "src", "configMap": {"name": "lab-podserver"}}],
            },
        }},
    }


def deploy(bin_dir: Path, app: str, replicas: int, node_names: list[str], port: int, namespace: str,
           timeout: float = 120) -> list[str]:
    """Create a real Deployment and wait until its pods are Ready; return their names."""
    docs = [_podserver_configmap(namespace), deployment_manifest(app, replicas, node_names, port, namespace)]
    tools.kubectl("apply", "-f", "-", input="\n".join(json.dumps(d) for d in docs), bins=bin_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = app_pods(bin_dir, app, namespace)
        ready = [p["metadata"]["name"] for p in pods if pod_ready(p) and not p["metadata"].get("deletionTimestamp")]
        if len(ready) >= replicas:
            return sorted(ready)
        time.sleep(0.5)
    raise RuntimeError(f"deployment {app}: {replicas} pods not Ready after {timeout} s")


def app_pods(bin_dir: Path, app: str, namespace: str) -> list[dict[str, Any]]:
    """The pods labelled app=APP in NAMESPACE, as the API reports them."""
    out = tools.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json", bins=bin_dir).stdout
    return json.loads(out)["items"]


def delete(bin_dir: Path, app: str, namespace: str = "default") -> list[str]:
    """Delete the Deployment (its pods go with it); return the pods it had."""
    pods = app_pods(bin_dir, app, namespace)
    tools.kubectl("delete", "deployment", app, "-n", namespace, "--ignore-not-found", bins=bin_dir)
    return sorted(p["metadata"]["name"] for p in pods)


def container_pid(pod: dict[str, Any], container: str) -> int:
    """Host PID of a pod's container process, as the node's containerd reports it."""
    statuses = {s["name"]: s for s in pod["status"].get("containerStatuses", [])}
    container_id = statuses[container]["containerID"].removeprefix("containerd://")
    node_name = pod["spec"]["nodeName"]
    socket = realnode.containerd_socket(node_named(node_name))
    out = subprocess.run(["ctr", "--address", socket, "--namespace", "k8s.io", "tasks", "ls"], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines()[1:]:
        task, pid, *_ = line.split()
        if task == container_id:
            return int(pid)
    raise LookupError(f"{pod['metadata']['name']}/{container}: no task {container_id} on {node_name}")
