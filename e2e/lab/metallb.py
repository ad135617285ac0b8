"""MetalLB in the lab, beside IronLB (one at a time): its CRDs, a controller on the host, a speaker
per node namespace, and the Pod objects its memberlist discovers peers through."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

from kubernetes.client.rest import ApiException

from e2e.lab import bgp, kube, procs
from e2e.lab.config import HOST_IP_V4, KUBECONFIG, LAB_DIR, REPO, node_named
from e2e.lab.state import load_state, update_state
from e2e.lab.tools import kubectl

NAMESPACE = "metallb-system"
SPEAKER_LABELS = {"app": "metallb", "component": "speaker"}
CONTROLLER_POD = "metallb-controller"
# Ports of their own: the controller shares the host with IronLB's operator and the API server.
CONTROLLER_METRICS_PORT, CONTROLLER_HEALTH_PORT = 9130, 17482
SPEAKER_METRICS_PORT, SPEAKER_HEALTH_PORT, MEMBERLIST_PORT = 9120, 17472, 7946
KEY_DIR = LAB_DIR / "metallb"
PROC_PREFIX = "metallb-"


def bin_dir() -> Path:
    """Directory of MetalLB's speaker, controller, crds/ and VERSION (built on demand)."""
    override = os.environ.get("IRONLB_METALLB_BIN")
    if override:
        return Path(override)
    out = subprocess.run(["bash", str(REPO / "tools" / "metallb" / "build.sh")], check=True,
                         capture_output=True, text=True).stdout
    return Path(out.strip().splitlines()[-1])


def version() -> str:
    """The pinned MetalLB version (as tools/metallb/module/go.mod requires it)."""
    for line in (REPO / "tools" / "metallb" / "module" / "go.mod").read_text().splitlines():
        if line.strip().startswith("require go.universe.tf/metallb "):
            return line.split()[-1]
    raise RuntimeError("tools/metallb/module/go.mod does not pin go.universe.tf/metallb")


def running() -> bool:
    """True if any MetalLB process of the lab runs."""
    return bool(procs.running(PROC_PREFIX))


def ironlb_running() -> bool:
    """True if IronLB's operator or any of its speakers runs in the lab."""
    return bool(procs.running("operator") or procs.running("speaker-"))


def speaker_proc(node_name: str) -> str:
    """The lab's process name of NODE's MetalLB speaker."""
    return f"{PROC_PREFIX}speaker-{node_name}"


def _kubectl(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return kubectl(*args, check=check, timeout=120, input=input)


def _pod(name: str, labels: dict[str, str], node_name: str | None) -> dict:
    spec: dict = {"hostNetwork": True, "terminationGracePeriodSeconds": 0,
                  "containers": [{"name": "metallb", "image": "quay.io/metallb/lab-process:1"}]}
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}


def _replace_pod(api, name: str, labels: dict[str, str], node_name: str | None, ip: str) -> None:
    """The Pod a kubelet would report for one MetalLB process, running and ready at IP."""
    kube.delete_pod(api, NAMESPACE, name)
    for _ in range(50):  # deletion with grace 0 is quick, but not instant
        try:
            api.read_namespaced_pod(name, NAMESPACE)
        except ApiException as exc:
            if exc.status == 404:
                break
        time.sleep(0.1)
    kube.create_pod(api, NAMESPACE, _pod(name, labels, node_name), ip, [ip])


def _memberlist_key() -> Path:
    """A directory holding the memberlist key file `secretkey`, as the chart's Secret would mount it."""
    KEY_DIR.mkdir(parents=True, exist_ok=True)
    key = KEY_DIR / "secretkey"
    if not key.exists():
        key.write_text(secrets.token_hex(32))
        key.chmod(0o600)
    return KEY_DIR


def start_speaker(node_name: str) -> int:
    """Start MetalLB's speaker inside NODE's namespace, bound to its node address."""
    n = node_named(node_name)
    argv = [str(bin_dir() / "speaker"), "--node-name", n.name, "--pod-name", f"metallb-speaker-{n.name}",
            "--namespace", NAMESPACE, "--ml-bindaddr", n.ipv4, "--ml-bindport", str(MEMBERLIST_PORT),
            "--ml-labels", ",".join(f"{k}={v}" for k, v in SPEAKER_LABELS.items()),
            "--ml-secret-key-path", str(_memberlist_key()), "--port", str(SPEAKER_METRICS_PORT),
            "--health-probe-port", str(SPEAKER_HEALTH_PORT), "--log-level", "info"]
    return procs.spawn(speaker_proc(n.name), argv, netns=n.netns, env={"KUBECONFIG": str(KUBECONFIG)})


def start() -> None:
    """CRDs, namespace, Pod objects, then the controller and a speaker on every live node."""
    if ironlb_running():
        raise RuntimeError("IronLB runs in this lab; only one implementation at a time: "
                           "`python -m e2e.lab ironlb stop` first")
    bins = bin_dir()
    _kubectl("apply", "--server-side", "-f", str(bins / "crds"))
    _kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(bins / "crds"))
    if _kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0:
        _kubectl("create", "namespace", NAMESPACE)
    api = kube.core_api()
    live = load_state().live_nodes
    _replace_pod(api, CONTROLLER_POD, {"app": "metallb", "component": "controller"}, None, HOST_IP_V4)
    for n in live:
        _replace_pod(api, f"metallb-speaker-{n.name}", SPEAKER_LABELS, n.name, n.ipv4)
    procs.spawn(f"{PROC_PREFIX}controller", [str(bins / "controller"), "--namespace", NAMESPACE,
                                              "--pod-name", CONTROLLER_POD, "--webhook-mode", "disabled",
                                              "--port", str(CONTROLLER_METRICS_PORT),
                                              "--health-probe-port", str(CONTROLLER_HEALTH_PORT),
                                              "--log-level", "info"],
                env={"KUBECONFIG": str(KUBECONFIG)})
    for n in live:
        start_speaker(n.name)
    if load_state().bgp:  # its BGP mode towards the lab's router
        _kubectl("apply", "-f", "-", input="\n".join(json.dumps(m) for m in bgp.metallb_manifests()))
    update_state(metallb=True)


def stop() -> list[str]:
    """Stop MetalLB's processes, delete its Pods and its CRDs (their objects go with them), so
    `kubectl get ipaddresspools` means IronLB's again."""
    stopped = procs.stop_all(PROC_PREFIX)
    if KUBECONFIG.exists() and procs.running("kube-apiserver"):
        _kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", check=False)
        crds = _kubectl("get", "crd", "-o", "name", check=False).stdout.split()
        ours = [c for c in crds if c.endswith(".metallb.io")]
        if ours:
            _kubectl("delete", *ours, "--ignore-not-found", "--timeout=90s", check=False)
    update_state(metallb=False)
    return stopped
