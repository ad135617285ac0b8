"""Test-side handle on the lab: kubectl, exec in namespaces, apply manifests, wait for conditions."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from e2e.lab import lab, procs, workload
from e2e.lab.config import KUBECONFIG
from e2e.lab.state import Status, load_state
from e2e.lab.tools import bin_dir

T = TypeVar("T")


@dataclass
class Kube:
    """The running lab as tests see it."""

    kubeconfig: Path
    bin_dir: Path

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the lab's kubectl; raise with its stderr if `check` and it fails."""
        res = subprocess.run([str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
                             input=input, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {res.stderr.strip()}")
        return res

    def helm(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the lab's helm."""
        res = subprocess.run([str(self.bin_dir / "helm"), f"--kubeconfig={self.kubeconfig}", *args],
                             capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {res.stderr.strip()}")
        return res

    def apply(self, *manifests: dict[str, Any] | str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """kubectl apply the given manifests (dicts or YAML text)."""
        text = "\n---\n".join(m if isinstance(m, str) else yaml.safe_dump(m) for m in manifests)
        return self.kubectl("apply", "-f", "-", input=text, check=check)

    def get(self, kind: str, name: str, namespace: str | None = "default") -> dict[str, Any]:
        """One object as a dict."""
        ns = ["-n", namespace] if namespace else []
        return json.loads(self.kubectl("get", kind, name, *ns, "-o", "json").stdout)

    def exec(self, name: str, *argv: str, timeout: float = 15, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a command in a lab namespace (node-N, client, or a pod)."""
        res = subprocess.run(["ip", "netns", "exec", lab.namespace_of(name), *argv], capture_output=True,
                             text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"{name}: {' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")
        return res

    def curl(self, name: str, url: str, timeout: float = 2) -> str | None:
        """GET `url` from a lab namespace; the body, or None if it did not answer."""
        res = self.exec(name, "curl", "-s", "-g", "-m", str(timeout), url, timeout=timeout + 5)
        return res.stdout.strip() if res.returncode == 0 else None

    def deploy(self, app: str, replicas: int = 2, nodes: list[str] | None = None, port: int = 8080,
               namespace: str = "default") -> list[str]:
        """Deploy lab pods labelled app=APP; return their names."""
        state = load_state()
        return workload.deploy(app, replicas, nodes or state.node_names, port, namespace, state.ipv6)

    def undeploy(self, app: str) -> None:
        """Remove a lab workload."""
        workload.delete(app)

    @property
    def nodes(self) -> list[str]:
        """Names of the lab's nodes."""
        return load_state().node_names


def speaker_hears_all(kube: Kube, node: str) -> bool:
    """NODE's speaker answers /metrics, has joined the election and counts every lab node alive."""
    res = kube.exec(node, "curl", "-s", "-m", "1", "http://127.0.0.1:7473/metrics")
    return res.returncode == 0 and f"ironlb_speaker_alive_peers {len(kube.nodes)}.0" in res.stdout


def ingress_ips(kube: Kube, namespace: str, names: list[str]) -> dict[str, str | None]:
    """Each named Service's first ingress IP (None while it has none)."""
    out = {}
    for name in names:
        ingress = kube.get("service", name, namespace).get("status", {}).get("loadBalancer", {}).get("ingress")
        out[name] = (ingress or [{}])[0].get("ip")
    return out


def assigned_ips(kube: Kube, namespace: str, names: list[str]) -> dict[str, str] | None:
    """Each named Service's IP once every one has one; None before (a probe for wait_for)."""
    ips = ingress_ips(kube, namespace, names)
    return ips if all(ips.values()) else None  # type: ignore[return-value]


def wait_for(probe: Callable[[], T | None], timeout: float = 20, interval: float = 0.2,
             what: str = "condition") -> T:
    """Call `probe` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def ensure_lab(nodes: int = 3, ipv6: bool = False) -> tuple[Kube, bool]:
    """A running lab of the wanted shape, reusing one that runs; True if this call started it."""
    state = load_state()
    reuse = (state.status == Status.READY and state.nodes == nodes and state.ipv6 == ipv6 and not state.kubelet
             and all(procs.is_running(e) for n, e in state.procs.items() if n in ("etcd", "kube-apiserver")))
    if not reuse:
        lab.up(nodes=nodes, ipv6=ipv6, with_ironlb=True)
    return Kube(kubeconfig=KUBECONFIG, bin_dir=bin_dir()), not reuse


def pool_manifest(name: str, addresses: list[str], **spec: Any) -> dict[str, Any]:
    """An IPAddressPool manifest."""
    return {"apiVersion": "ironlb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": name},
            "spec": {"addresses": addresses, **spec}}


def pool_manifests(name: str, addresses: list[str], advertisement: dict[str, Any] | None = None,
                   **spec: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """An IPAddressPool NAME (not auto-assigned unless SPEC says) and an L2Advertisement announcing it."""
    ad = {"apiVersion": "ironlb.io/v1beta1", "kind": "L2Advertisement", "metadata": {"name": name},
          "spec": {"ipAddressPools": [name], **(advertisement or {})}}
    return pool_manifest(name, addresses, **{"autoAssign": False, **spec}), ad


def announced_pool(kube: Kube, name: str, addresses: list[str], nodes: tuple[str, ...]) -> Iterator[None]:
    """A pool (and its advertisement) applied once every speaker of NODES hears every peer; removed after."""
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in nodes), timeout=60, what="every speaker in the election")
    kube.apply(*pool_manifests(name, addresses))
    yield
    kube.kubectl("delete", "l2advertisement", name, "--ignore-not-found")
    kube.kubectl("delete", "ipaddresspool", name, "--ignore-not-found")


def served_everywhere(kube: Kube, name: str, service: dict[str, Any], nodes: tuple[str, ...]) -> Iterator[str]:
    """A workload NAME with a pod on every one of NODES and SERVICE in front of it; removed after."""
    kube.deploy(name, replicas=len(nodes), nodes=list(nodes))
    kube.apply(service)
    yield name
    kube.kubectl("delete", "service", name, "--wait=false")
    kube.undeploy(name)
