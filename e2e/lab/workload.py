"""Lab workloads: pods as real processes in their own namespaces, and their Pod objects."""

from __future__ import annotations

import dataclasses
import sys

from e2e.lab import kube, netns, procs
from e2e.lab.config import NS_PREFIX, REPO, NodeAddr, node_named
from e2e.lab.state import Pod, load_state, save_state


def pod_netns(pod: str) -> str:
    """Network namespace of a lab pod."""
    return f"{NS_PREFIX}pod-{pod}"


def _next_host_index(node_name: str) -> int:
    """Claim the next pod address on NODE_NAME (its last octet, or host part), recorded in the lab's state."""
    state = load_state()
    index = state.pod_ip_counter.get(node_name, 9) + 1
    if index > 250:
        raise RuntimeError(f"{node_name}: out of pod addresses")
    save_state(dataclasses.replace(state, pod_ip_counter={**state.pod_ip_counter, node_name: index}))
    return index


def _wire_pod(pod: str, host: NodeAddr, k: int, ipv6: bool) -> list[str]:
    """Create the pod namespace, plug it into the node's cbr0, return its IPs."""
    ns = pod_netns(pod)
    netns.add_netns(ns)
    port = f"vp{host.index}x{k}"
    netns.veth("eth0", ns, port, host.netns)
    netns.ip("link", "set", port, "master", "cbr0", netns=host.netns)
    netns.ip("link", "set", port, "up", netns=host.netns)
    ips = [f"198.19.{host.index}.{k}"]
    netns.ip("addr", "add", f"{ips[0]}/24", "dev", "eth0", netns=ns)
    if ipv6:
        ips.append(f"2001:db8:19:{host.index:x}::{k:x}")
        netns.ip("addr", "add", f"{ips[1]}/64", "dev", "eth0", "nodad", netns=ns)
    netns.ip("link", "set", "eth0", "up", netns=ns)
    netns.ip("route", "add", "default", "via", host.pod_gateway_v4, netns=ns)
    if ipv6:
        netns.ip("-6", "route", "add", "default", "via", host.pod_gateway_v6, netns=ns)
    return ips


def start_pod_process(pod: str, port: int) -> int:
    """Start (or restart) the pod's HTTP server in its namespace."""
    return procs.spawn(f"pod-{pod}", [sys.executable, "-m", "e2e.probes.podserver", "--name", pod,
                                      "--port", str(port)], netns=pod_netns(pod),
                       env={"PYTHONPATH": str(REPO)})


def deploy(app: str, replicas: int, node_names: list[str], port: int, namespace: str, ipv6: bool) -> list[str]:
    """Deploy `replicas` pods labelled app=APP round-robin over `node_names`; return pod names."""
    api = kube.core_api()
    existing = load_state().pods
    created = []
    for i in range(replicas):
        pod = f"{app}-{i}"
        if pod in existing:
            raise RuntimeError(f"pod {pod} already exists in the lab")
        host = node_named(node_names[i % len(node_names)])
        ips = _wire_pod(pod, host, _next_host_index(host.name), ipv6)
        record = Pod(app=app, namespace=namespace, node=host.name, ips=tuple(ips), port=port)
        save_state(load_state().with_pod(pod, record))
        start_pod_process(pod, port)
        kube.create_pod(api, namespace, kube.pod_manifest(pod, app, host.name, port), host.ipv4, ips)
        created.append(pod)
    return created


def delete(app: str) -> list[str]:
    """Stop and remove every pod of `app` (processes, namespaces, Pod objects)."""
    removed = [pod for pod, info in sorted(load_state().pods.items()) if info.app == app]
    for pod in removed:
        remove_pod(pod)
    return removed


def remove_pod(pod: str) -> None:
    """Stop and remove one pod (its process, namespace and Pod object), as its kubelet does once it ends."""
    info = load_state().pods[pod]
    procs.stop(f"pod-{pod}")
    netns.delete_netns(pod_netns(pod))
    kube.delete_pod(kube.core_api(), info.namespace, pod)
    save_state(load_state().without_pods([pod]))


def set_ready(pod: str, ready: bool) -> None:
    """Stop or restart a pod's process and report it (not) ready, as a kubelet would."""
    info = load_state().pods[pod]
    host = node_named(info.node)
    if ready:
        if not procs.running(f"pod-{pod}"):  # already up (e.g. its node was revived): keep it
            start_pod_process(pod, info.port)
    else:
        procs.stop(f"pod-{pod}")
    kube.set_pod_ready(kube.core_api(), info.namespace, pod, host.ipv4, list(info.ips), ready)


def pods_on(node_name: str) -> list[str]:
    """Names of the lab pods placed on `node_name`."""
    return [p for p, i in load_state().pods.items() if i.node == node_name]
