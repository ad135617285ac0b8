"""The lab's router (`up --bgp`, lightweight mode): sessions, BFD, ECMP in the router's kernel FIB, a node
killed, and bgpclient's routed path.

Each node's FRR is configured here through its vty socket, as a speaker would configure it, so this test
stands on the lab alone, not on the speaker's BGP mode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from e2e.lab import bgp, frr, lab, netns
from e2e.lab.config import NodeAddr
from e2e.lab.state import load_state
from e2e.testkit.testing import Kube, wait_for

pytestmark = pytest.mark.lab

TEST_PREFIX = "203.0.113.240/32"  # from the pools' range, announced by every node
TEST_PREFIX_V6 = "2001:db8:ffff::240/128"
KILLED = "node-3"


def configure_node(node: NodeAddr, bfd: bgp.Bfd, ipv6: bool) -> None:
    """NODE's FRR as a speaker would set it: a session to the router with BFD, TEST_PREFIX announced."""
    neighbours = [bgp.ROUTER_IP_V4, *([bgp.ROUTER_IP_V6] if ipv6 else [])]
    lines = ["bfd", f"profile {bgp.BFD_PROFILE}", *bfd.profile_lines(), "exit", "exit",
             f"router bgp {bgp.NODE_ASN}", f"bgp router-id {node.ipv4}", "no bgp ebgp-requires-policy",
             "no bgp network import-check"]
    for peer in neighbours:
        lines += [f"neighbor {peer} remote-as {bgp.ROUTER_ASN}", f"neighbor {peer} timers 3 9",
                  f"neighbor {peer} timers connect 1", f"neighbor {peer} bfd profile {bgp.BFD_PROFILE}"]
    lines += ["address-family ipv4 unicast", f"network {TEST_PREFIX}", "exit-address-family"]
    if ipv6:  # each family on its own session: the IPv4 route must go with the IPv4 session's BFD
        lines += ["address-family ipv4 unicast", f"no neighbor {bgp.ROUTER_IP_V6} activate", "exit-address-family",
                  "address-family ipv6 unicast", f"neighbor {bgp.ROUTER_IP_V6} activate", f"network {TEST_PREFIX_V6}",
                  "exit-address-family"]
    frr.configure(bgp.node_socket_dir(node), lines)


def set_bfd_everywhere(nodes: list[NodeAddr], bfd: bgp.Bfd) -> None:
    """The router's profile and each node's, live; returns once the router's sessions run at those timers."""
    bgp.set_bfd(bfd)
    for n in nodes:
        frr.configure(bgp.node_socket_dir(n), ["bfd", f"profile {bgp.BFD_PROFILE}", *bfd.profile_lines()])

    def negotiated() -> bool:
        peers = bgp.router_bfd_peers()
        return all(peers.get(n.ipv4, {}).get("status") == "up"
                   and peers[n.ipv4].get("remote-transmit-interval") == bfd.interval_ms
                   and peers[n.ipv4].get("receive-interval") == bfd.interval_ms
                   and peers[n.ipv4].get("remote-detect-multiplier") == bfd.multiplier for n in nodes)

    wait_for(negotiated, timeout=15, what=f"BFD at {bfd.interval_ms} ms x {bfd.multiplier} with every node")


def wait_all_up(nodes: list[NodeAddr], ipv6: bool) -> None:
    """Every node's session Established on the router, its BFD up, and TEST_PREFIX via every node."""
    wanted = {n.ipv4 for n in nodes} | ({n.ipv6 for n in nodes} if ipv6 else set())
    wait_for(lambda: all(bgp.router_sessions().get(a) == "Established" for a in wanted), timeout=30,
             what="every node's session Established on the router")
    wait_for(lambda: all(bgp.router_bfd_peers().get(n.ipv4, {}).get("status") == "up" for n in nodes), timeout=15,
             what="BFD up with every node")
    wait_for(lambda: bgp.router_next_hops(TEST_PREFIX) == {n.ipv4 for n in nodes}, timeout=15,
             what=f"{TEST_PREFIX} via every node in the router's FIB")


@pytest.fixture(scope="module")
def bgp_nodes(kube: Kube) -> Iterator[list[NodeAddr]]:
    """The lab with its router (added if it runs without one), every live node's FRR configured."""
    attached = lab.attach_bgp()
    state = load_state()
    for n in state.live_nodes:
        configure_node(n, bgp.DEFAULT_BFD, state.ipv6)
    wait_all_up(state.live_nodes, state.ipv6)
    yield state.live_nodes
    if attached:
        lab.detach_bgp()


def test_sessions_bfd_and_ecmp(bgp_nodes: list[NodeAddr]) -> None:
    """Every node peers with the router (BFD up) and the router's kernel FIB holds one ECMP route over all."""
    assert len(bgp_nodes) == 3
    assert bgp.router_next_hops(TEST_PREFIX) == {n.ipv4 for n in bgp_nodes}
    if load_state().ipv6:
        # Next hops of IPv6 routes from directly connected peers are the nodes' link-local addresses.
        wait_for(lambda: len(bgp.router_next_hops(TEST_PREFIX_V6)) == len(bgp_nodes), timeout=15,
                 what=f"{TEST_PREFIX_V6} via every node")


def test_bgpclient_reaches_a_node_through_the_router(bgp_nodes: list[NodeAddr]) -> None:
    """bgpclient, whose only route is the router, opens a TCP connection to a node (its bgpd's port)."""
    state = load_state()
    targets = [bgp_nodes[0].ipv4, *([bgp_nodes[0].ipv6] if state.ipv6 else [])]
    for address in targets:
        probe = ("import socket,sys; socket.create_connection((sys.argv[1], 179), timeout=2).close()")
        res = netns.run_in(bgp.BGPCLIENT_NS, ["python3", "-c", probe, address], check=False, timeout=10)
        assert res.returncode == 0, f"bgpclient -> {address}: {res.stderr.strip()}"


def drop_time(prefix: str, dead: str, started: threading.Event, result: dict[str, float], limit: float) -> None:
    """Poll the router's FIB until DEAD is no longer a next hop of PREFIX; record the monotonic time in RESULT."""
    started.set()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if dead not in bgp.router_next_hops(prefix):
            result["dropped"] = time.monotonic()
            return
        time.sleep(0.005)


@pytest.mark.parametrize("bfd", [bgp.Bfd(300, 3), bgp.Bfd(100, 3)], ids=["bfd300x3", "bfd100x3"])
def test_killed_node_dropped_by_bfd(bgp_nodes: list[NodeAddr], bfd: bgp.Bfd,
                                    record_property: Callable[[str, object], None]) -> None:
    """A node's links cut (no NOTIFICATION, no BFD down): the router's BFD drops its next hop within the
    detection time, and not before most of it (the drop is BFD's, not a link event)."""
    state = load_state()
    set_bfd_everywhere(bgp_nodes, bfd)
    dead = next(n for n in bgp_nodes if n.name == KILLED)
    started, result = threading.Event(), {}
    watcher = threading.Thread(target=drop_time, args=(TEST_PREFIX, dead.ipv4, started, result, 10.0))
    watcher.start()
    started.wait()
    cut = lab.kill_node(dead.name)
    watcher.join()
    try:
        assert "dropped" in result, f"{dead.name}'s next hop still in the router's FIB 10 s after the cut"
        took = result["dropped"] - cut
        detect = bfd.interval_ms * bfd.multiplier / 1000
        print(f"\nBFD {bfd.interval_ms} ms x {bfd.multiplier}: next hop dropped {took:.3f} s after the cut")
        record_property(f"withdraw_s_bfd{bfd.interval_ms}", round(took, 3))
        assert bgp.router_next_hops(TEST_PREFIX) == {n.ipv4 for n in bgp_nodes if n != dead}
        # The node's last packet before the cut came at most one interval earlier, and the router declares
        # the session down the detection time after it.
        assert detect - bfd.interval_ms / 1000 - 0.05 <= took <= detect + 0.5, took
    finally:
        lab.revive_node(dead.name)
        configure_node(dead, bfd, state.ipv6)
        wait_all_up(bgp_nodes, state.ipv6)
        set_bfd_everywhere(bgp_nodes, bgp.DEFAULT_BFD)
