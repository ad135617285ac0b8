"""BGP mode beats BFD (lightweight lab with its router, BFD off on the router): with `--bgp-proxy-next-hops` every
node's path reaches the router over another node's session only, so when a node is cut off the survivors, whose
heartbeats miss it, replace its next hop over their live sessions, and the router's FIB drops it within 1 s,
where without BFD it would wait for the hold timer (9 s here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from e2e.lab import lab
from e2e.lab.config import NodeAddr
from e2e.lab.state import load_state
from e2e.testkit import bgpproxy
from e2e.testkit.testing import Kube

pytestmark = pytest.mark.lab

KILLED = "node-2"


@pytest.fixture(scope="module")
def proxy_nodes(kube: Kube) -> Iterator[list[NodeAddr]]:
    """The lab with its router (added if missing, removed after, the speakers then restarted without it)."""
    attached = lab.attach_bgp()
    try:
        yield load_state().live_nodes
    finally:
        if attached:
            lab.detach_bgp()
            for n in load_state().live_nodes:
                bgpproxy.restart_speaker(n.name, None)


def test_a_killed_nodes_next_hop_leaves_the_router_within_a_second_without_bfd(
        kube: Kube, proxy_nodes: list[NodeAddr], record_property: Callable[[str, object], None]) -> None:
    """Every node a next hop over another's session; one node cut (no FIN, no BFD): its next hop is gone from the
    router's FIB within 1 s, and the survivors' paths are all still there."""
    dead = next(n for n in proxy_nodes if n.name == KILLED)
    with bgpproxy.proxied_service(kube) as prefix:
        took, hops = bgpproxy.kill_once(dead, prefix)
        print(f"\nproxied next hops, router without BFD: {dead.name}'s next hop dropped {took} s after the cut")
        record_property("withdraw_s_nobfd", took)
        assert took is not None and took <= 1.0, took
        assert hops == {n.ipv4 for n in proxy_nodes} - {dead.ipv4}, hops
