"""The harness's Kubernetes client (admin identity): Node and Pod objects, as a kubelet would write them."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from e2e.lab.config import KUBECONFIG, NodeAddr


def core_api() -> client.CoreV1Api:
    """A CoreV1Api bound to the lab's admin kubeconfig."""
    return client.CoreV1Api(config.new_client_from_config(config_file=str(KUBECONFIG)))


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_manifest(node: NodeAddr, ipv6: bool) -> dict[str, Any]:
    """A Node object for a lab node (spec part)."""
    cidrs = [node.pod_cidr_v4, *([node.pod_cidr_v6] if ipv6 else [])]
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node.name, "labels": {
            "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "ironlb.io/lab": "true",
        }},
        "spec": {"podCIDR": cidrs[0], "podCIDRs": cidrs},
    }


def node_status(node: NodeAddr, ipv6: bool, ready: bool = True) -> dict[str, Any]:
    """The status a kubelet would report for a lab node."""
    now = _now()
    addresses = [{"type": "InternalIP", "address": node.ipv4}]
    if ipv6:
        addresses.append({"type": "InternalIP", "address": node.ipv6})
    addresses.append({"type": "Hostname", "address": node.name})
    conds = [
        {"type": "Ready", "status": "True" if ready else "False", "reason": "LabKubeletReady",
         "message": "lab harness plays the kubelet", "lastHeartbeatTime": now, "lastTransitionTime": now},
        {"type": "NetworkUnavailable", "status": "False", "reason": "LabRoutes",
         "message": "pod routes programmed by the lab", "lastHeartbeatTime": now, "lastTransitionTime": now},
    ]
    return {"status": {"addresses": addresses, "conditions": conds,
                       "nodeInfo": {"kubeletVersion": "v1.34.4", "kubeProxyVersion": "", "osImage": "lab",
                                    "architecture": "amd64", "operatingSystem": "linux",
                                    "kernelVersion": "", "containerRuntimeVersion": "lab://1",
                                    "machineID": node.name, "systemUUID": node.name, "bootID": node.name},
                       "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                       "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}}


def register_node(api: client.CoreV1Api, node: NodeAddr, ipv6: bool) -> None:
    """Create (or replace) the Node object and report it Ready, as the harness plays its kubelet."""
    create_node(api, node, ipv6)
    api.patch_node_status(node.name, node_status(node, ipv6))


def create_node(api: client.CoreV1Api, node: NodeAddr, ipv6: bool) -> None:
    """Create (or replace) the Node object with its pod CIDR only; its kubelet reports the status."""
    try:
        api.delete_node(node.name)
    except ApiException as exc:
        if exc.status != 404:
            raise
    api.create_node(node_manifest(node, ipv6))


def pod_manifest(name: str, app: str, node: str, port: int) -> dict[str, Any]:
    """A Pod object for a lab workload pod bound to `node`."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "http", "image": "lab.ironlb.io/podserver:1",
                            "ports": [{"containerPort": port, "protocol": "TCP", "name": "http"}]}],
            "terminationGracePeriodSeconds": 0,
        },
    }


def pod_status(node_ip: str, pod_ips: list[str], ready: bool) -> dict[str, Any]:
    """The status a kubelet would report for a lab pod."""
    now = _now()
    flag = "True" if ready else "False"
    conds = [{"type": t, "status": s, "lastTransitionTime": now} for t, s in (
        ("PodScheduled", "True"), ("Initialized", "True"), ("ContainersReady", flag), ("Ready", flag))]
    state = {"running": {"startedAt": now}} if ready else {"terminated": {"exitCode": 137, "reason": "Stopped"}}
    return {"status": {
        "phase": "Running", "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
        "podIP": pod_ips[0], "podIPs": [{"ip": ip} for ip in pod_ips], "startTime": now,
        "conditions": conds,
        "containerStatuses": [{"name": "http", "ready": ready, "started": ready, "restartCount": 0,
                               "image": "lab.ironlb.io/podserver:1", "imageID": "", "state": state}],
    }}


def create_pod(api: client.CoreV1Api, namespace: str, manifest: dict[str, Any], node_ip: str,
               pod_ips: list[str]) -> None:
    """Create a Pod and report it running and ready."""
    name = manifest["metadata"]["name"]
    try:
        api.create_namespaced_pod(namespace, manifest)
    except ApiException as exc:
        if exc.status != 403 or "serviceaccount" not in str(exc.body).lower():
            raise
        # A new namespace's default ServiceAccount appears a moment after the namespace.
        time.sleep(1)
        api.create_namespaced_pod(namespace, manifest)
    api.patch_namespaced_pod_status(name, namespace, pod_status(node_ip, pod_ips, ready=True))


def set_pod_ready(api: client.CoreV1Api, namespace: str, name: str, node_ip: str, pod_ips: list[str],
                  ready: bool) -> None:
    """Report a pod ready or not (the EndpointSlice controller follows)."""
    api.patch_namespaced_pod_status(name, namespace, pod_status(node_ip, pod_ips, ready=ready))


def delete_pod(api: client.CoreV1Api, namespace: str, name: str) -> None:
    """Delete a Pod at once (there is no kubelet to wait for)."""
    try:
        api.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    except ApiException as exc:
        if exc.status != 404:
            raise
