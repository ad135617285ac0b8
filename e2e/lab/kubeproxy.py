"""Real kube-proxy (nftables mode), one per node namespace."""

from __future__ import annotations

from pathlib import Path

from e2e.lab import procs
from e2e.lab.config import CLUSTER_CIDR_V4, CLUSTER_CIDR_V6, LAB_DIR, NodeAddr
from e2e.lab.pki import write_kubeconfig


def proc_name(node: NodeAddr) -> str:
    """Name under which the lab records a node's kube-proxy."""
    return f"kube-proxy-{node.name}"


def write_config(node: NodeAddr, ipv6: bool) -> Path:
    """Write the node's KubeProxyConfiguration."""
    kubeconfig = write_kubeconfig(LAB_DIR / "kube-proxy.kubeconfig", "kube-proxy")
    cluster_cidr = f"{CLUSTER_CIDR_V4},{CLUSTER_CIDR_V6}" if ipv6 else CLUSTER_CIDR_V4
    path = LAB_DIR / f"kube-proxy-{node.name}.yaml"
    path.write_text(f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
hostnameOverride: {node.name}
clientConnection:
  kubeconfig: {kubeconfig}
clusterCIDR: {cluster_cidr}
bindAddress: 0.0.0.0
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: 127.0.0.1:10249
# The node namespaces share the host kernel: leave global conntrack sysctls alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
nftables:
  syncPeriod: 30s
  minSyncPeriod: 1s
""")
    return path


def start(node: NodeAddr, bin_dir: Path, ipv6: bool) -> int:
    """Start kube-proxy inside the node's namespace."""
    config = write_config(node, ipv6)
    return procs.spawn(proc_name(node), [str(bin_dir / "kube-proxy"), "--config", str(config), "--v=1"],
                       netns=node.netns)
