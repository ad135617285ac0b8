"""Fixed facts of the lab: names, address plan, ports and paths (documentation ranges only)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = Path(os.environ.get("IRONLB_LAB_DIR", REPO / ".lab"))
STATE_FILE = LAB_DIR / "state.json"
LOG_DIR = LAB_DIR / "logs"
PKI_DIR = LAB_DIR / "pki"
KUBECONFIG = LAB_DIR / "kubeconfig"
LOCK_FILE = LAB_DIR / "lock"

# Network namespaces the lab creates all start with this prefix, so a leftover is easy to find.
NS_PREFIX = "ilb-"
BRIDGE_NS = f"{NS_PREFIX}bridge"
BRIDGE = "br0"
MGMT_BRIDGE = "mgmt0"
HOST_VETH = "ilb-mgmt"

# Address plan (docs/lab.md, "Address plan"): nothing outside these ranges is ever used.
# The host itself never joins the node segment: a machine's own network may use 192.0.2.0/24
# too, and a second route to it on the host would send lab replies out of the real interface.
# The control plane is reached over a separate management segment in the benchmark range,
# outside the Service CIDR: the host is 198.18.16.1 there, node N is 198.18.16.(10+N).
NODE_SUBNET_V4 = "192.0.2.0/24"
MGMT_SUBNET_V4 = "198.18.16.0/24"
HOST_IP_V4 = "198.18.16.1"
CLIENT_IP_V4 = "192.0.2.100"
NODE_SUBNET_V6 = "2001:db8::/64"
CLIENT_IP_V6 = "2001:db8::100"
SERVICE_CIDR_V4 = "198.18.0.0/20"
SERVICE_CIDR_V6 = "2001:db8:5::/112"
CLUSTER_CIDR_V4 = "198.19.0.0/16"
CLUSTER_CIDR_V6 = "2001:db8:19::/56"
POOL_RANGES_V4 = ("203.0.113.0/24", "198.51.100.0/24")
POOL_RANGES_V6 = ("2001:db8:ffff::/64",)

ETCD_CLIENT_PORT = 23790
ETCD_PEER_PORT = 23800
APISERVER_PORT = 6443
API_URL = f"https://{HOST_IP_V4}:{APISERVER_PORT}"
K8S_VERSION = "v1.34.4"


@dataclass(frozen=True)
class NodeAddr:
    """Addresses of one lab node."""

    name: str
    index: int

    @property
    def netns(self) -> str:
        """Name of the node's network namespace."""
        return f"{NS_PREFIX}{self.name}"

    @property
    def ipv4(self) -> str:
        """The node's InternalIP on the shared L2 segment."""
        return f"192.0.2.{10 + self.index}"

    @property
    def mgmt_ipv4(self) -> str:
        """The node's address on the management segment (API server traffic only)."""
        return f"198.18.16.{10 + self.index}"

    @property
    def mgmt_port(self) -> str:
        """Name of the node's management veth end plugged into the management bridge."""
        return f"vm{self.index}"

    @property
    def ipv6(self) -> str:
        """The node's IPv6 InternalIP (dual-stack labs)."""
        return f"2001:db8::{10 + self.index:x}"

    @property
    def pod_cidr_v4(self) -> str:
        """The node's IPv4 pod CIDR."""
        return f"198.19.{self.index}.0/24"

    @property
    def pod_gateway_v4(self) -> str:
        """The node's address on its pod bridge."""
        return f"198.19.{self.index}.1"

    @property
    def pod_cidr_v6(self) -> str:
        """The node's IPv6 pod CIDR."""
        return f"2001:db8:19:{self.index:x}::/64"

    @property
    def pod_gateway_v6(self) -> str:
        """The node's IPv6 address on its pod bridge."""
        return f"2001:db8:19:{self.index:x}::1"

    @property
    def bridge_port(self) -> str:
        """Name of the node's veth end plugged into the lab bridge."""
        return f"vn{self.index}"


def node(index: int) -> NodeAddr:
    """The node numbered `index` (1-based)."""
    return NodeAddr(name=f"node-{index}", index=index)


def node_named(name: str) -> NodeAddr:
    """The node called `name` (node-N)."""
    return node(int(name.rsplit("-", 1)[1]))


def tools_bin() -> Path:
    """Directory of the Go-built binaries (built on demand by tools/build.sh)."""
    override = os.environ.get("IRONLB_TOOLS_BIN")
    if override:
        return Path(override)
    import subprocess

    out = subprocess.run(
        ["bash", str(REPO / "tools" / "build.sh")], check=True, capture_output=True, text=True
    ).stdout
    return Path(out.strip().splitlines()[-1])
