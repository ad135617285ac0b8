"""Where the upstream e2e process runs (`up --kubelet --conformance`): the `ilb-e2e` namespace, placed as a test
client outside the cluster would be.

- A leg on the management segment (E2E_MGMT_IP) reaches the API server, as the lab's host does.
- A leg on the node segment carries its traffic to the nodes and the VIPs, but from E2E_SOURCE_IP, an address in
  a subnet of its own (E2E_SUBNET) outside the nodes' subnet: the source-IP specs tell a preserved client address
  from a node's SNAT by whether it falls in the nodes' subnet. The namespace is that subnet's router: each node
  routes E2E_SUBNET to its node-segment address (E2E_LINK_IP), which is a /32 so that it is only the ARP
  sender, never a source the kernel picks for a connection.

Nothing else goes through it: it has no default route, and no route to pod or Service CIDRs.
"""

from __future__ import annotations

from e2e.lab import netns, network
from e2e.lab.config import MGMT_BRIDGE, NODE_SUBNET_V4, NS_PREFIX, POOL_RANGES_V4, NodeAddr

NAMESPACE = f"{NS_PREFIX}e2e"
E2E_SUBNET = "198.18.40.0/24"
E2E_SOURCE_IP = "198.18.40.2"
E2E_LINK_IP = "192.0.2.200"
E2E_MGMT_IP = "198.18.16.200"


def create(nodes: list[NodeAddr]) -> None:
    """The namespace with both legs, its routes, and each node's route back to it."""
    netns.add_netns(NAMESPACE)
    network.attach(NAMESPACE, "ve2e", f"{E2E_LINK_IP}", None)
    # /24 from attach() would make 192.0.2.200 the source of connections to nodes: keep it as a /32.
    netns.ip("addr", "del", f"{E2E_LINK_IP}/24", "dev", "eth0", netns=NAMESPACE)
    netns.ip("addr", "add", f"{E2E_LINK_IP}/32", "dev", "eth0", netns=NAMESPACE)
    netns.ip("addr", "add", f"{E2E_SOURCE_IP}/24", "dev", "lo", netns=NAMESPACE)
    # ARP for a node or a VIP from the segment's own address, never from E2E_SOURCE_IP.
    netns.sysctl(NAMESPACE, "net.ipv4.conf.eth0.arp_announce", "2")
    for cidr in (NODE_SUBNET_V4, *POOL_RANGES_V4):
        netns.ip("route", "add", cidr, "dev", "eth0", "src", E2E_SOURCE_IP, netns=NAMESPACE)
    network.attach(NAMESPACE, "ve2em", E2E_MGMT_IP, None, dev="mgmt0", bridge=MGMT_BRIDGE)
    for n in nodes:
        route_back(n)


def route_back(node: NodeAddr) -> None:
    """The node's route to the e2e client's subnet (a node's links going down drop it: re-add on revive)."""
    netns.ip("route", "replace", E2E_SUBNET, "via", E2E_LINK_IP, "dev", "eth0", netns=node.netns)
