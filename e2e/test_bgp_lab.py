"""The lab's router (`up --bgp`, lightweight mode): sessions, BFD, ECMP in the router's kernel FIB, a node
killed, and bgpclient's routed path.

Each node's FRR is configured here through its vty socket, as a speaker would configure it
(e2e.testkit.bgprouter), so this test stands on the lab alone, not on the speaker's BGP mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from e2e.lab import bgp, ironlb_procs, lab, netns, procs
from e2e.lab.config import NodeAddr
from e2e.lab.state import load_state
from e2e.testkit import bgprouter as router
from e2e.testkit.testing import Kube, wait_for

pytestmark = pytest.mark.lab

KILLED = "node-3"


@pytest.fixture(scope="module")
def bgp_nodes(kube: Kube) -> Iterator[list[NodeAddr]]:
    """The lab with its router (added if it runs without one), every live node's FRR configured."""
    attached = lab.attach_bgp()
    state = load_state()
    for n in state.live_nodes:
        router.configure_node(n, bgp.DEFAULT_BFD, state.ipv6)
    router.wait_all_up(state.live_nodes, state.ipv6)
    yield state.live_nodes
    if attached:
        lab.detach_bgp()
    else:
        for n in load_state().live_nodes:
            router.unconfigure_node(n)


def test_sessions_bfd_and_ecmp(bgp_nodes: list[NodeAddr]) -> None:
    """Every node peers with the router (BFD up) and the router's kernel FIB holds one ECMP route over all."""
    assert len(bgp_nodes) == 3
    assert bgp.router_next_hops(router.TEST_PREFIX) == {n.ipv4 for n in bgp_nodes}
    if load_state().ipv6:
        # Next hops of IPv6 routes from directly connected peers are the nodes' link-local addresses.
        wait_for(lambda: len(bgp.router_next_hops(router.TEST_PREFIX_V6)) == len(bgp_nodes), timeout=15,
                 what=f"{router.TEST_PREFIX_V6} via every node")


def test_bgpclient_reaches_a_node_through_the_router(bgp_nodes: list[NodeAddr]) -> None:
    """bgpclient, whose only route is the router, opens a TCP connection to a node (its bgpd's port)."""
    state = load_state()
    targets = [bgp_nodes[0].ipv4, *([bgp_nodes[0].ipv6] if state.ipv6 else [])]
    for address in targets:
        probe = "import socket,sys; socket.create_connection((sys.argv[1], 179), timeout=2).close()"
        res = netns.run_in(bgp.BGPCLIENT_NS, ["python3", "-c", probe, address], check=False, timeout=10)
        assert res.returncode == 0, f"bgpclient -> {address}: {res.stderr.strip()}"


@pytest.mark.parametrize("bfd", [bgp.Bfd(300, 3), bgp.Bfd(100, 3)], ids=["bfd300x3", "bfd100x3"])
def test_killed_node_dropped_by_bfd(bgp_nodes: list[NodeAddr], bfd: bgp.Bfd,
                                    record_property: Callable[[str, object], None]) -> None:
    """A node's links cut (no NOTIFICATION, no BFD down): the router's BFD drops its next hop within the
    detection time, and not before most of it (the drop is BFD's, not a link event)."""
    state = load_state()
    router.set_bfd_everywhere(bgp_nodes, bfd)
    dead = next(n for n in bgp_nodes if n.name == KILLED)
    took = router.kill_and_time_drop(dead)
    try:
        assert took is not None, f"{dead.name}'s next hop still in the router's FIB long after the cut"
        detect = bfd.interval_ms * bfd.multiplier / 1000
        print(f"\nBFD {bfd.interval_ms} ms x {bfd.multiplier}: next hop dropped {took:.3f} s after the cut")
        record_property(f"withdraw_s_bfd{bfd.interval_ms}", round(took, 3))
        assert bgp.router_next_hops(router.TEST_PREFIX) == {n.ipv4 for n in bgp_nodes if n != dead}
        # The node's last packet before the cut came at most one interval earlier, and the router declares
        # the session down the detection time after it.
        assert detect - bfd.interval_ms / 1000 - 0.05 <= took <= detect + 0.5, took
    finally:
        lab.revive_node(dead.name)
        if state.ironlb:  # its speaker back in layer 2 only: in BGP mode it would own the FRR configured here
            procs.stop(f"speaker-{dead.name}")
            ironlb_procs.start_speaker(dead.name, bgp_mode=False)
        router.configure_node(dead, bfd, state.ipv6)
        router.wait_all_up(bgp_nodes, state.ipv6)
        router.set_bfd_everywhere(bgp_nodes, bgp.DEFAULT_BFD)
