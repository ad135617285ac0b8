"""etcd, kube-apiserver and kube-controller-manager of the lab, on the host beside the bridge."""

from __future__ import annotations

import shutil
import ssl
import time
import urllib.request
from pathlib import Path

from e2e.lab import procs
from e2e.lab.config import (
    API_URL,
    APISERVER_PORT,
    CLUSTER_CIDR_V4,
    CLUSTER_CIDR_V6,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    HOST_IP_V4,
    LAB_DIR,
    PKI_DIR,
    SERVICE_CIDR_V4,
    SERVICE_CIDR_V6,
)
from e2e.lab.pki import write_kubeconfig

# Controllers the lab runs: service accounts, namespace deletion, garbage collection, admission policies'
# type checks and the EndpointSlice controller (real endpoints from the harness's Pods). No node lifecycle
# controller: the harness plays the kubelet, and a node's death is IronLB's to detect, not the lab's.
KCM_CONTROLLERS = ",".join([
    "serviceaccount-controller", "namespace-controller", "garbage-collector-controller",
    "endpointslice-controller", "root-ca-certificate-publisher-controller", "service-cidr-controller",
    # Type-checks ValidatingAdmissionPolicies (the chart's) and reports warnings in their status.
    "validatingadmissionpolicy-status-controller",
])
# Real nodes (`up --kubelet`) add the workload controllers, so the chart's Deployment and DaemonSet
# run, and the node lifecycle controller, which lifts the not-ready taint a kubelet registers with.
KCM_KUBELET_CONTROLLERS = ",".join([
    KCM_CONTROLLERS, "deployment-controller", "replicaset-controller", "daemonset-controller",
    "node-lifecycle-controller",
    "job-controller",  # the chart's pre-delete hook is a Job
])
# Every write to the API, with who made it (user, user agent), and nothing else: benchmarks._apiwrites
# counts a component's writes from it. Reads are left out, so the log stays small under load.
AUDIT_LOG = LAB_DIR / "audit.log"
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
"""


def start_etcd(bin_dir: Path) -> None:
    """Start a single-member etcd on loopback with its data in .lab/etcd."""
    data = LAB_DIR / "etcd"
    shutil.rmtree(data, ignore_errors=True)
    procs.spawn("etcd", [
        str(bin_dir / "etcd"), "--name", "lab", "--data-dir", str(data),
        "--listen-client-urls", f"http://127.0.0.1:{ETCD_CLIENT_PORT}",
        "--advertise-client-urls", f"http://127.0.0.1:{ETCD_CLIENT_PORT}",
        "--listen-peer-urls", f"http://127.0.0.1:{ETCD_PEER_PORT}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{ETCD_PEER_PORT}",
        "--initial-cluster", f"lab=http://127.0.0.1:{ETCD_PEER_PORT}",
        "--listen-metrics-urls", "", "--log-level", "warn", "--quota-backend-bytes", str(2 * 1024**3),
        "--unsafe-no-fsync",  # a throwaway lab store: durability costs seconds for nothing here
    ])
    _wait_http(f"http://127.0.0.1:{ETCD_CLIENT_PORT}/health", "etcd", timeout=30)


def start_apiserver(bin_dir: Path, ipv6: bool, kubelet_hosts: dict[str, str] | None = None,
                    node_hosts: dict[str, str] | None = None) -> None:
    """Start kube-apiserver (TLS, RBAC) on the host's lab address.

    With real nodes, `kubelet_hosts` maps node names to their management addresses: the API server
    reaches kubelets (logs, exec) by node name, resolved in its own /etc/hosts, since it cannot
    reach their InternalIPs on the node segment. Lightweight nodes pass `node_hosts` the same way,
    so the node proxy (`nodes/NAME:PORT/proxy`, how `ironlb doctor` reads speakers' /metrics) works."""
    service_cidr = f"{SERVICE_CIDR_V4},{SERVICE_CIDR_V6}" if ipv6 else SERVICE_CIDR_V4
    pki = PKI_DIR
    prefix: list[str] = []
    kubelet_args: list[str] = []
    authorization = "RBAC"
    if kubelet_hosts is not None:
        authorization = "Node,RBAC"  # kubelets act as system:node:NAME
        prefix = _private_hosts(kubelet_hosts)
        kubelet_args = [
            "--kubelet-preferred-address-types", "Hostname",
            "--kubelet-client-certificate", str(pki / "admin.crt"), "--kubelet-client-key", str(pki / "admin.key"),
        ]
    elif node_hosts is not None:
        prefix = _private_hosts(node_hosts)
        kubelet_args = ["--kubelet-preferred-address-types", "Hostname"]
    policy = LAB_DIR / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY)
    procs.spawn("kube-apiserver", [
        *prefix,
        str(bin_dir / "kube-apiserver"),
        "--etcd-servers", f"http://127.0.0.1:{ETCD_CLIENT_PORT}",
        "--bind-address", HOST_IP_V4, "--advertise-address", HOST_IP_V4,
        "--secure-port", str(APISERVER_PORT),
        "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
        "--client-ca-file", str(pki / "ca.crt"),
        "--service-account-key-file", str(pki / "sa.pub"),
        "--service-account-signing-key-file", str(pki / "sa.key"),
        "--service-account-issuer", "https://kubernetes.default.svc",
        "--authorization-mode", authorization,
        "--service-cluster-ip-range", service_cidr,
        "--service-node-port-range", "30000-32767",
        "--allow-privileged=true",
        "--profiling=false",
        "--audit-policy-file", str(policy), "--audit-log-path", str(AUDIT_LOG),
        "--audit-log-maxsize", "200", "--audit-log-maxbackup", "2",
        "--v=1",
        *kubelet_args,
    ])
    _wait_http(f"{API_URL}/readyz", "kube-apiserver", timeout=90, tls=True)


def _private_hosts(hosts: dict[str, str]) -> list[str]:
    """argv prefix running a command in its own mount namespace with the lab's /etc/hosts over the host's."""
    path = LAB_DIR / "apiserver-hosts"
    path.write_text("127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in sorted(hosts.items())))
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(path)]


def start_scheduler(bin_dir: Path) -> None:
    """Start kube-scheduler (real nodes only)."""
    kubeconfig = write_kubeconfig(LAB_DIR / "kube-scheduler.kubeconfig", "kube-scheduler")
    procs.spawn("kube-scheduler", [
        str(bin_dir / "kube-scheduler"), "--kubeconfig", str(kubeconfig),
        "--authentication-kubeconfig", str(kubeconfig), "--authorization-kubeconfig", str(kubeconfig),
        "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "10259", "--v=1",
    ])


def start_controller_manager(bin_dir: Path, ipv6: bool, real_nodes: bool = False) -> None:
    """Start kube-controller-manager with the controllers the lab needs."""
    kubeconfig = write_kubeconfig(LAB_DIR / "kube-controller-manager.kubeconfig", "kube-controller-manager")
    cluster_cidr = f"{CLUSTER_CIDR_V4},{CLUSTER_CIDR_V6}" if ipv6 else CLUSTER_CIDR_V4
    procs.spawn("kube-controller-manager", [
        str(bin_dir / "kube-controller-manager"),
        "--kubeconfig", str(kubeconfig),
        "--authentication-kubeconfig", str(kubeconfig), "--authorization-kubeconfig", str(kubeconfig),
        "--controllers", KCM_KUBELET_CONTROLLERS if real_nodes else KCM_CONTROLLERS,
        "--cluster-cidr", cluster_cidr,
        "--service-account-private-key-file", str(PKI_DIR / "sa.key"),
        "--root-ca-file", str(PKI_DIR / "ca.crt"),
        "--use-service-account-credentials=true",
        "--leader-elect=false",
        "--bind-address", "127.0.0.1", "--secure-port", "10257",
        "--cert-dir", str(LAB_DIR / "kcm-certs"),
        "--v=1",
    ])


def _wait_http(url: str, what: str, timeout: float, tls: bool = False) -> None:
    """Poll `url` until it answers 200, or raise with the tail of the component's log."""
    ctx = None
    if tls:
        ctx = ssl.create_default_context(cafile=str(PKI_DIR / "ca.crt"))
        ctx.load_cert_chain(str(PKI_DIR / "admin.crt"), str(PKI_DIR / "admin.key"))
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        if not procs.running(what):
            break
        time.sleep(0.2)
    log = (LAB_DIR / "logs" / f"{what}.log")
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not become ready ({last}); log tail:\n{tail}")
