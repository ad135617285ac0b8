"""The swarm's segment: N node namespaces on one bridge of their own, nothing else (no API server, no pods).

Its namespaces start with SWARM_PREFIX, never the lab's other names, so the lab's nodes are never touched;
`python -m e2e.lab down` removes them too (they start with the lab's prefix). Addresses come from the reserved
segment 198.18.32.0/22 (docs/lab.md, "Address plan"): node N is the network's address 10 + N.
Packet loss is nftables' `numgen random` on the bridge's forward hook (the kernel here has no netem), so every
frame a node sends is dropped with the given chance on its way to each receiver.

Every node knows every other node's MAC from the start (permanent neighbour entries), as each real node's
own ARP table would: the swarm's namespaces share one kernel, whose neighbour table counts every namespace's
entries against one limit (gc_thresh3, 1,024 by default). A swarm of 50 nodes that each resolve 49 peers
overflows it, and the kernel then drops datagrams to peers it can no longer resolve: a lab artefact that a
real cluster, one kernel per node, does not have. Permanent entries are exempt from that limit.
"""

from __future__ import annotations

import ipaddress
import json
import time
from dataclasses import dataclass

from e2e.lab import netns

SWARM_PREFIX = "ilb-sw-"
BRIDGE_NS = f"{SWARM_PREFIX}bridge"
BRIDGE = "br0"
SUBNET = ipaddress.ip_network("198.18.32.0/22")
FIRST_HOST = 10  # node N is SUBNET's address FIRST_HOST + N
MAX_NODES = SUBNET.num_addresses - FIRST_HOST - 2  # the broadcast address stays free
LOSS_TABLE = "ilb_swarm_loss"


@dataclass(frozen=True)
class SwarmNode:
    """One node of the swarm: its namespace, address and bridge port."""

    index: int

    @property
    def name(self) -> str:
        """The node's name, as its heartbeats carry it."""
        return f"node-{self.index}"

    @property
    def netns(self) -> str:
        """Its network namespace."""
        return f"{SWARM_PREFIX}{self.index}"

    @property
    def ipv4(self) -> str:
        """Its address on the swarm's segment."""
        return str(SUBNET.network_address + FIRST_HOST + self.index)

    @property
    def port(self) -> str:
        """Its veth end on the bridge."""
        return f"sw{self.index}"


def nodes(count: int) -> list[SwarmNode]:
    """Nodes 1..COUNT."""
    if not 1 <= count <= MAX_NODES:
        raise ValueError(f"the swarm's segment holds 1 to {MAX_NODES} nodes, not {count}")
    return [SwarmNode(i) for i in range(1, count + 1)]


def create(members: list[SwarmNode]) -> None:
    """The bridge and every node's namespace, plugged in with its address (leftovers of a past run removed)."""
    destroy()
    netns.add_netns(BRIDGE_NS)
    netns.ip("link", "add", BRIDGE, "type", "bridge", netns=BRIDGE_NS)
    netns.ip("link", "set", BRIDGE, "up", netns=BRIDGE_NS)
    for node in members:
        netns.add_netns(node.netns)
        netns.veth("eth0", node.netns, node.port, BRIDGE_NS)
        netns.ip("link", "set", node.port, "master", BRIDGE, netns=BRIDGE_NS)
        netns.ip("link", "set", node.port, "up", netns=BRIDGE_NS)
        netns.ip("addr", "add", f"{node.ipv4}/{SUBNET.prefixlen}", "dev", "eth0", netns=node.netns)
        netns.ip("link", "set", "eth0", "up", netns=node.netns)
    know_each_other(members)


def know_each_other(members: list[SwarmNode]) -> None:
    """Give every node a permanent neighbour entry for every other node (one `ip -batch` per namespace)."""
    macs = {node.name: interface(node)[1] for node in members}
    for node in members:
        lines = [f"neigh replace {other.ipv4} lladdr {macs[other.name]} dev eth0 nud permanent"
                 for other in members if other != node]
        if lines:
            netns.run_in(node.netns, ["ip", "-batch", "-"], input="\n".join(lines) + "\n")


def interface(node: SwarmNode) -> tuple[int, str]:
    """The node's eth0: (ifindex, MAC)."""
    link = json.loads(netns.ip("-j", "link", "show", "dev", "eth0", netns=node.netns).stdout)[0]
    return link["ifindex"], link["address"]


def cut(node: SwarmNode) -> float:
    """Cut the node off (both ends of its cable down); the monotonic time its bridge port went down."""
    netns.ip("link", "set", node.port, "down", netns=BRIDGE_NS, check=False)
    cut_at = time.monotonic()
    netns.ip("link", "set", "eth0", "down", netns=node.netns, check=False)
    return cut_at


def reconnect(node: SwarmNode) -> None:
    """Plug a cut node back in."""
    netns.ip("link", "set", "eth0", "up", netns=node.netns)
    netns.ip("link", "set", node.port, "up", netns=BRIDGE_NS)


def set_loss(percent: int) -> None:
    """Drop PERCENT % of the frames the bridge forwards, each copy on its own chance (0: none)."""
    netns.run_in(BRIDGE_NS, ["nft", "delete", "table", "bridge", LOSS_TABLE], check=False)
    if percent:
        rules = (f"table bridge {LOSS_TABLE} {{\n chain forward {{\n  type filter hook forward priority 0; "
                 f"policy accept;\n  numgen random mod 100 < {percent} counter drop\n }}\n}}\n")
        netns.run_in(BRIDGE_NS, ["nft", "-f", "-"], input=rules)


def dropped() -> int:
    """Frames the loss rule dropped so far."""
    out = netns.run_in(BRIDGE_NS, ["nft", "-j", "list", "table", "bridge", LOSS_TABLE], check=False).stdout
    if not out:
        return 0
    items = json.loads(out)["nftables"]
    return sum(expr["counter"]["packets"] for item in items if "rule" in item
               for expr in item["rule"]["expr"] if "counter" in expr)


def destroy() -> list[str]:
    """Delete every swarm namespace (nodes first, the bridge last); return their names."""
    names = netns.list_netns(SWARM_PREFIX)
    for name in sorted(names, key=lambda n: n == BRIDGE_NS):
        netns.delete_netns(name)
    return names
