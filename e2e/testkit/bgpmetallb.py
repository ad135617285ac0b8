"""MetalLB's native BGP mode in the lab in place of IronLB's speakers, as `benchmarks.bgp` and
`e2e/test_bgp_takeover.py` run it: IronLB stopped, the BGP config its speakers left on the nodes' FRR taken off,
then MetalLB started (on a `--bgp` lab with its BGPPeer towards the router, its pool and its advertisement)."""

from __future__ import annotations

import sys

from e2e.lab import bgp, frr, ironlb_procs, metallb
from e2e.lab.config import NodeAddr


def clear_nodes_frr(nodes: list[NodeAddr]) -> None:
    """Take the BGP config IronLB's speakers left off each node's FRR, so that MetalLB's native speaker is the only
    BGP speaker of each node address (a second session from one address is a collision the router resolves by
    closing one of them). What each FRR still had is printed: a stopped speaker is given seconds, not its drain."""
    for n in nodes:
        held = frr.vtysh(bgp.node_socket_dir(n), "show bgp summary", check=False).stdout.strip()
        print(f"metallb: {n.name}'s FRR before it is cleared: {held or 'nothing'}", file=sys.stderr)
        frr.vtysh(bgp.node_socket_dir(n), "configure terminal", f"no router bgp {bgp.NODE_ASN}", check=False)


def start_in_place_of_ironlb(nodes: list[NodeAddr]) -> None:
    """Stop IronLB, clear NODES' FRR, start MetalLB (its BGP mode towards the router on a `--bgp` lab)."""
    ironlb_procs.stop_ironlb()
    clear_nodes_frr(nodes)
    metallb.start()
