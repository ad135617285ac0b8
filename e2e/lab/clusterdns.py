"""The real-node lab's cluster DNS (`up --kubelet --conformance`): CoreDNS as a conformant cluster runs it.

A Deployment in kube-system behind the Service `kube-dns` at a fixed ClusterIP, which every kubelet is given as
`clusterDNS` (with `clusterDomain`), so a pod resolves a Service's name (`nc mutability-test 80`) as in any
cluster. CoreDNS serves the cluster domain only: the lab has no upstream resolver, and nothing in it may ask one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from e2e.lab import tools

CLUSTER_DNS_IP = "198.18.0.10"  # in the Service CIDR, as kubeadm's tenth address
CLUSTER_DOMAIN = "cluster.local"
NAMESPACE = "kube-system"
NAME = "coredns"
LABELS = {"k8s-app": "kube-dns"}

COREFILE = f""".:53 {{
    errors
    health {{
        lameduck 5s
    }}
    ready
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    loadbalance
    reload
}}
"""


def _rbac() -> list[dict[str, Any]]:
    """What CoreDNS's kubernetes plugin reads, as upstream's deployment grants it."""
    meta = {"name": f"system:{NAME}"}
    rules = [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": NAME, "namespace": NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": meta["name"]},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
    ]


def _deployment(image: str) -> dict[str, Any]:
    """CoreDNS's Deployment: the Corefile from a ConfigMap, ready when the kubernetes plugin has synced."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME, "namespace": NAMESPACE,
                                                                    "labels": LABELS},
        "spec": {"replicas": 1, "selector": {"matchLabels": LABELS}, "template": {
            "metadata": {"labels": LABELS},
            "spec": {
                "serviceAccountName": NAME,
                "dnsPolicy": "Default",
                "priorityClassName": "system-cluster-critical",
                "containers": [{
                    "name": NAME, "image": image, "imagePullPolicy": "Never",
                    "args": ["-conf", "/etc/coredns/Corefile"],
                    "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                              {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}],
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
                    "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10,
                                      "failureThreshold": 5},
                    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                }],
                "volumes": [{"name": "config", "configMap": {"name": NAME}}],
            },
        }},
    }


def manifests(image: str) -> list[dict[str, Any]]:
    """Everything the cluster DNS is made of: RBAC, the Corefile, the Deployment and the kube-dns Service."""
    return [
        *_rbac(),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME, "namespace": NAMESPACE},
         "data": {"Corefile": COREFILE}},
        _deployment(image),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": NAMESPACE,
                                                              "labels": LABELS},
         "spec": {"selector": LABELS, "clusterIP": CLUSTER_DNS_IP,
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}},
    ]


def install(bin_dir: Path, image: str, timeout: float = 180) -> float:
    """Apply the cluster DNS and wait until it is rolled out; return the seconds it took."""
    started = time.monotonic()
    tools.kubectl("apply", "-f", "-", input="\n".join(json.dumps(d) for d in manifests(image)), bins=bin_dir)
    tools.kubectl("rollout", "status", f"deployment/{NAME}", "-n", NAMESPACE, f"--timeout={int(timeout)}s",
                  timeout=timeout + 30, bins=bin_dir)
    return round(time.monotonic() - started, 1)
