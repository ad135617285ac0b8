"""MetalLB's native BGP mode in the lab in place of IronLB's speakers, as `benchmarks.bgp` and
`e2e/test_bgp_takeover.py` run it: IronLB stopped (each speaker drained, and its node's FRR left holding nothing of
IronLB's), then MetalLB started (on a `--bgp` lab with its BGPPeer towards the router, its pool and its
advertisement). MetalLB's native speaker must be the only BGP speaker of each node address: a second session from
one address is a collision the router resolves by closing one of them."""

from __future__ import annotations

from e2e.lab import ironlb_procs, metallb


def start_in_place_of_ironlb() -> None:
    """Stop IronLB (which empties every node's FRR of its config), then start MetalLB."""
    ironlb_procs.stop_ironlb()
    metallb.start()
