"""Real kube-proxy (nftables mode), one per node namespace."""

from __future__ import annotations

import subprocess
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


def explain(node: NodeAddr, node_port: int) -> str:
    """What a failure message needs of the node's kube-proxy: is it running, which addresses it serves NodePorts
    on, and whether it has programmed NODE_PORT."""
    entry = procs.running(proc_name(node)).get(proc_name(node))

    def nft(kind: str, name: str) -> str:
        res = subprocess.run(["ip", "netns", "exec", node.netns, "nft", "list", kind, "ip", "kube-proxy", name],
                             capture_output=True, text=True, timeout=10)
        return " ".join((res.stdout or res.stderr).split())

    nodeport_ips = nft("set", "nodeport-ips")
    elements = nodeport_ips.find("elements")
    return (f"kube-proxy on {node.name}: {f'pid {entry.pid}' if entry else 'not running'}; "
            f"nodeport-ips: {nodeport_ips[elements:] if elements >= 0 else nodeport_ips}; "
            f"port {node_port} programmed: {f' {node_port} ' in nft('map', 'service-nodeports')}")
