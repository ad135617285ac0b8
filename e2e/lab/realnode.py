"""Real nodes (`up --kubelet`): per node namespace its own containerd, runc, CNI bridge and kubelet.

Each node keeps its runtime state under `.lab/nodes/NODE/` (containerd root, state and socket,
the kubelet's root dir, pod logs, CNI config and IP leases) and its processes in its own cgroup
tree (e2e.lab.cgroups). containerd and the kubelet are started with `nsenter --net=`, not
`ip netns exec`: the latter remounts /sys in a new mount namespace, which hides /sys/fs/cgroup.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from e2e.lab import cgroups, image, netns, procs
from e2e.lab.config import CLUSTER_CIDR_V4, LAB_DIR, PKI_DIR, NodeAddr
from e2e.lab.pki import ensure_node_cert, write_kubeconfig

NODES_DIR = LAB_DIR / "nodes"
CNI_BIN = "/usr/lib/cni"
KUBELET_PORT = 10250


def node_dir(node: NodeAddr) -> Path:
    """Where a real node keeps its runtime state."""
    return NODES_DIR / node.name


def containerd_socket(node: NodeAddr) -> str:
    """The node's containerd socket."""
    return str(node_dir(node) / "containerd" / "containerd.sock")


def _in_node(node: NodeAddr, argv: list[str]) -> list[str]:
    """argv that joins the node's runtime cgroups and its network namespace, then runs `argv`."""
    procs_files = " ".join(str(p) for p in cgroups.prepare(node.name))
    # The shell moves itself into the cgroups before exec, so the command and all it forks
    # (containerd's shims included) start there.
    script = f'for f in {procs_files}; do echo $$ > "$f"; done; exec "$@"'
    return ["sh", "-c", script, "sh", "nsenter", f"--net=/var/run/netns/{node.netns}", *argv]


def write_containerd_config(node: NodeAddr) -> Path:
    """containerd's config: own root, state and socket; CRI with the lab's pause and CNI."""
    d = node_dir(node) / "containerd"
    d.mkdir(parents=True, exist_ok=True)
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    path = d / "config.toml"
    path.write_text(f"""version = 2
root = "{d / 'root'}"
state = "{d / 'state'}"
[grpc]
  address = "{containerd_socket(node)}"
[ttrpc]
  address = "{d / 'containerd.sock.ttrpc'}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d / 'opt'}"
[{cri}]
  sandbox_image = "{image.PAUSE_IMAGE}"
  # Root here lacks CAP_SYS_RESOURCE: no process may lower its OOM score below its parent's, and
  # the CRI asks -998 for sandboxes; without this runc create fails.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d / 'runc'}"
  [{cri}.cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{node_dir(node) / 'cni'}"
""")
    return path


def write_cni_config(node: NodeAddr, ipv6: bool) -> Path:
    """The CNI bridge on the node's cbr0 (host-local IPAM in its pod CIDR, default route via the bridge)."""
    d = node_dir(node) / "cni"
    d.mkdir(parents=True, exist_ok=True)
    ranges = [[{"subnet": node.pod_cidr_v4, "rangeStart": f"198.19.{node.index}.100",
                "gateway": node.pod_gateway_v4}]]
    routes = [{"dst": "0.0.0.0/0"}]
    if ipv6:
        ranges.append([{"subnet": node.pod_cidr_v6, "gateway": node.pod_gateway_v6}])
        routes.append({"dst": "::/0"})
    conf = {"cniVersion": "1.0.0", "name": "lab", "plugins": [
        {"type": "bridge", "bridge": "cbr0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
         "ipam": {"type": "host-local", "ranges": ranges, "routes": routes,
                  "dataDir": str(node_dir(node) / "ipam")}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ]}
    path = d / "10-lab.conflist"
    path.write_text(json.dumps(conf, indent=2))
    return path


def write_kubelet_config(node: NodeAddr, cluster_dns: str | None = None) -> Path:
    """The kubelet's config: the node's cgroup root and containerd, x509 clients of the lab CA; pods resolve
    names through CLUSTER_DNS (`--conformance`) if given."""
    d = node_dir(node) / "kubelet"
    d.mkdir(parents=True, exist_ok=True)
    path = node_dir(node) / "kubelet.yaml"
    path.write_text(f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {node.mgmt_ipv4}
port: {KUBELET_PORT}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
  x509: {{clientCAFile: {PKI_DIR / 'ca.crt'}}}
# Only the API server holds a client certificate of the lab CA.
authorization: {{mode: AlwaysAllow}}
cgroupDriver: cgroupfs
cgroupRoot: {cgroups.root_name(node.name)}
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
containerRuntimeEndpoint: unix://{containerd_socket(node)}
podLogsDir: {node_dir(node) / 'pod-logs'}
failSwapOn: false
resolvConf: ""
# The nodes share one disk and one memory: no eviction, and the imported images are never collected.
evictionHard: {{memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 110
""" + (f"clusterDNS: [{cluster_dns}]\nclusterDomain: cluster.local\n" if cluster_dns else ""))
    return path


def start_containerd(node: NodeAddr, ipv6: bool) -> None:
    """Start the node's containerd and wait for its socket."""
    config = write_containerd_config(node)
    write_cni_config(node, ipv6)
    procs.spawn(f"containerd-{node.name}", _in_node(node, ["containerd", "--config", str(config)]))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if subprocess.run(["ctr", "--address", containerd_socket(node), "version"],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{node.name}: containerd did not start (see .lab/logs/containerd-{node.name}.log)")


def import_images(node: NodeAddr) -> None:
    """Import the lab's images (pause and IronLB) into the node's containerd."""
    for archive in image.archives():
        image.import_into(containerd_socket(node), archive)


def start_kubelet(node: NodeAddr, bin_dir: Path, ipv6: bool, cluster_dns: str | None = None) -> None:
    """Start the node's kubelet (as system:node:NODE) against the lab's API server."""
    ensure_node_cert(node.name)
    kubeconfig = write_kubeconfig(node_dir(node) / "kubelet.kubeconfig", f"node-{node.name}")
    config = write_kubelet_config(node, cluster_dns)
    node_ips = f"{node.ipv4},{node.ipv6}" if ipv6 else node.ipv4
    procs.spawn(f"kubelet-{node.name}", _in_node(node, [
        str(bin_dir / "kubelet"), "--config", str(config), "--kubeconfig", str(kubeconfig),
        "--root-dir", str(node_dir(node) / "kubelet"), "--cert-dir", str(node_dir(node) / "kubelet-pki"),
        "--hostname-override", node.name, "--node-ip", node_ips, "--node-labels", "ironlb.io/lab=true",
        "--v=1",
    ]))


def masquerade_to_management(node: NodeAddr) -> None:
    """Pods reach the API server on the management segment through their node's address, as a real
    node NATs its pods' egress; the host has no route back to pod CIDRs."""
    rules = f"""table ip lab-mgmt {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "mgmt0" ip saddr {CLUSTER_CIDR_V4} masquerade
  }}
}}
"""
    netns.run_in(node.netns, ["nft", "-f", "-"], input=rules)


def boot(node: NodeAddr, bin_dir: Path, ipv6: bool, cluster_dns: str | None = None) -> None:
    """Boot a real node: containerd (with the lab's images), then the kubelet."""
    masquerade_to_management(node)
    start_containerd(node, ipv6)
    import_images(node)
    start_kubelet(node, bin_dir, ipv6, cluster_dns)


def kill(node: NodeAddr) -> int:
    """SIGKILL everything the node runs: kubelet, containerd, shims and containers (its cgroup tree)."""
    for name in (f"kubelet-{node.name}", f"containerd-{node.name}"):
        procs.stop(name, sig=9, timeout=2)
    return cgroups.kill(node.name)


def _lab_mounts() -> list[str]:
    """Mount points under the lab's node dirs, deepest first."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(f"{NODES_DIR}/"):
            points.append(point)
    return sorted(set(points), key=len, reverse=True)


def _pod_netns() -> list[str]:
    """Pod sandbox namespaces (containerd's cni-*) whose pod address is in the lab's pod range."""
    names = []
    for entry in netns.list_netns(prefix="cni-"):
        out = netns.ip("-o", "-4", "addr", "show", netns=entry, check=False).stdout
        if " 198.19." in out:  # CLUSTER_CIDR_V4: only the lab's pods have these
            names.append(entry)
    return names


def teardown() -> list[str]:
    """Kill every real node, then remove their mounts, pod namespaces, cgroups and state."""
    removed = []
    for name in cgroups.lab_nodes():
        for proc in (f"kubelet-{name}", f"containerd-{name}"):
            procs.stop(proc, sig=9, timeout=2)
        cgroups.kill(name)
        removed.append(f"node {name}")
    for point in _lab_mounts():
        subprocess.run(["umount", "-l", point], capture_output=True)
    for ns in _pod_netns():
        netns.delete_netns(ns)
        removed.append(ns)
    for name in cgroups.lab_nodes():
        cgroups.remove(name)
    _remove_log_links()
    shutil.rmtree(NODES_DIR, ignore_errors=True)
    return removed


def _remove_log_links() -> None:
    """The kubelet links each container's log into /var/log/containers; remove the links to ours."""
    links = Path("/var/log/containers")
    if not links.is_dir():
        return
    for link in links.iterdir():
        if link.is_symlink() and os.readlink(link).startswith(f"{NODES_DIR}/"):
            link.unlink()
