"""The lab's segments: the node L2 segment (nodes, client) and the management segment (API server)."""

from __future__ import annotations

import time

from e2e.lab import netns
from e2e.lab.config import (
    BRIDGE,
    BRIDGE_NS,
    CLIENT_IP_V4,
    CLIENT_IP_V6,
    HOST_IP_V4,
    HOST_VETH,
    MGMT_BRIDGE,
    NS_PREFIX,
    POOL_RANGES_V4,
    POOL_RANGES_V6,
    SERVICE_CIDR_V4,
    SERVICE_CIDR_V6,
    NodeAddr,
)

CLIENT_NS = f"{NS_PREFIX}client"


def create_bridges() -> None:
    """Create the bridge namespace with the node segment and the management segment.

    The host is plugged into the management segment only, never into the node segment.
    """
    netns.add_netns(BRIDGE_NS)
    for bridge in (BRIDGE, MGMT_BRIDGE):
        netns.ip("link", "add", bridge, "type", "bridge", netns=BRIDGE_NS)
        # Solicited-node multicast must reach every port whether or not a speaker sent an MLD report.
        netns.ip("link", "set", bridge, "type", "bridge", "mcast_snooping", "0", netns=BRIDGE_NS)
        netns.ip("link", "set", bridge, "up", netns=BRIDGE_NS)
    netns.ip("link", "del", HOST_VETH, check=False)
    netns.veth(HOST_VETH, None, "vmhost", BRIDGE_NS)
    _plug("vmhost", MGMT_BRIDGE)
    netns.ip("addr", "add", f"{HOST_IP_V4}/24", "dev", HOST_VETH)
    netns.ip("link", "set", HOST_VETH, "up")


def _plug(port: str, bridge: str = BRIDGE) -> None:
    """Attach a veth end in the bridge namespace to a bridge and bring it up."""
    netns.ip("link", "set", port, "master", bridge, netns=BRIDGE_NS)
    netns.ip("link", "set", port, "up", netns=BRIDGE_NS)


def attach(ns: str, port: str, v4: str, v6: str | None, dev: str = "eth0", bridge: str = BRIDGE) -> None:
    """Give namespace `ns` an interface DEV on BRIDGE with the given addresses."""
    netns.veth(dev, ns, port, BRIDGE_NS)
    _plug(port, bridge)
    # A cut cable (node kill) must not flush IPv6 addresses: revive only brings the link back.
    netns.sysctl(ns, f"net.ipv6.conf.{dev}.keep_addr_on_down", "1")
    netns.ip("addr", "add", f"{v4}/24", "dev", dev, netns=ns)
    if v6:
        netns.ip("addr", "add", f"{v6}/64", "dev", dev, "nodad", netns=ns)
    netns.ip("link", "set", dev, "up", netns=ns)


def create_node(node: NodeAddr, peers: list[NodeAddr], ipv6: bool) -> None:
    """Create a node namespace: eth0 on the node segment, mgmt0 to the API server, a cbr0 pod bridge."""
    ns = node.netns
    netns.add_netns(ns)
    attach(ns, node.bridge_port, node.ipv4, node.ipv6 if ipv6 else None)
    attach(ns, node.mgmt_port, node.mgmt_ipv4, None, dev="mgmt0", bridge=MGMT_BRIDGE)
    netns.sysctl(ns, "net.ipv4.ip_forward", "1")
    netns.sysctl(ns, "net.ipv4.conf.all.rp_filter", "0")
    netns.ip("link", "add", "cbr0", "type", "bridge", netns=ns)
    netns.ip("addr", "add", f"{node.pod_gateway_v4}/24", "dev", "cbr0", netns=ns)
    if ipv6:
        netns.sysctl(ns, "net.ipv6.conf.all.forwarding", "1")
        netns.ip("addr", "add", f"{node.pod_gateway_v6}/64", "dev", "cbr0", "nodad", netns=ns)
    netns.ip("link", "set", "cbr0", "up", netns=ns)
    add_peer_routes(node, peers, ipv6)


def add_service_routes(node: NodeAddr, ipv6: bool) -> None:
    """Route the Service CIDR on the node, as a real node's default route would.

    A locally generated packet needs a route before kube-proxy's output-hook DNAT rewrites it;
    the lab has no router, so the Service CIDR is on-link on eth0 (DNAT always applies first).
    """
    netns.ip("route", "replace", SERVICE_CIDR_V4, "dev", "eth0", netns=node.netns)
    if ipv6:
        netns.ip("-6", "route", "replace", SERVICE_CIDR_V6, "dev", "eth0", netns=node.netns)


def add_peer_routes(node: NodeAddr, peers: list[NodeAddr], ipv6: bool) -> None:
    """Route every other node's pod CIDR via that node (a downed link drops these; re-add on revive)."""
    for peer in peers:
        if peer.index == node.index:
            continue
        netns.ip("route", "replace", peer.pod_cidr_v4, "via", peer.ipv4, netns=node.netns)
        if ipv6:
            netns.ip("-6", "route", "replace", peer.pod_cidr_v6, "via", peer.ipv6, netns=node.netns)
    add_service_routes(node, ipv6)


def create_client(ipv6: bool) -> None:
    """Create the external client: on the node segment, on-link routes to the pools, nothing else."""
    netns.add_netns(CLIENT_NS)
    attach(CLIENT_NS, "vclient", CLIENT_IP_V4, CLIENT_IP_V6 if ipv6 else None)
    # The pool ranges are on-link, as a router on a real L2 segment would have them: the client
    # ARPs for a VIP and the elected speaker answers. No route to pod or Service CIDRs exists.
    for cidr in POOL_RANGES_V4:
        netns.ip("route", "add", cidr, "dev", "eth0", netns=CLIENT_NS)
    if ipv6:
        for cidr in POOL_RANGES_V6:
            netns.ip("-6", "route", "add", cidr, "dev", "eth0", netns=CLIENT_NS)


def cut_node(node: NodeAddr) -> float:
    """Cut a node off both segments (both ends of each cable go down); return the monotonic time
    its node-segment port went down, the moment clients lose it."""
    cut = 0.0
    for port, dev in ((node.bridge_port, "eth0"), (node.mgmt_port, "mgmt0")):
        netns.ip("link", "set", port, "down", netns=BRIDGE_NS, check=False)
        cut = cut or time.monotonic()
        netns.ip("link", "set", dev, "down", netns=node.netns, check=False)
    return cut


def forget_kernel_state(node: NodeAddr) -> None:
    """What a reboot loses: the node's nftables rules and conntrack table (the namespace outlives a 'kill').

    Without this a revived node would start kube-proxy on the rules its killed predecessor left, and
    kube-proxy's first sync keeps existing endpoint chains as they are, even one it had emptied."""
    netns.run_in(node.netns, ["nft", "flush", "ruleset"])
    netns.run_in(node.netns, ["conntrack", "-F"], check=False)  # exits 1 on an empty table


def reconnect_node(node: NodeAddr, peers: list[NodeAddr], ipv6: bool) -> None:
    """Plug a cut node back in and restore its routes."""
    for port, dev in ((node.bridge_port, "eth0"), (node.mgmt_port, "mgmt0")):
        netns.ip("link", "set", dev, "up", netns=node.netns)
        netns.ip("link", "set", port, "up", netns=BRIDGE_NS)
    add_peer_routes(node, peers, ipv6)


def destroy_all() -> list[str]:
    """Delete every lab namespace and the host's veth; return the namespaces removed."""
    names = netns.list_lab_netns()
    # Pods first, then nodes and client, the bridge last.
    for name in sorted(names, key=lambda n: (n == BRIDGE_NS, not n.startswith(f"{NS_PREFIX}pod-"))):
        netns.delete_netns(name)
    netns.ip("link", "del", HOST_VETH, check=False)
    return names
