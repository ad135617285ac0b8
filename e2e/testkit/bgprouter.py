"""The lab's router as tests and benchmarks drive it: each node's FRR configured as a speaker would (through its vty
socket, so nothing here depends on the speaker's BGP mode), waits on the router's sessions, BFD and FIB, and the
time until a killed node's next hop leaves the router's FIB."""

from __future__ import annotations

import threading
import time

from e2e.lab import bgp, frr, lab
from e2e.lab.config import NodeAddr
from e2e.testkit.testing import wait_for

TEST_PREFIX = "203.0.113.240/32"  # from the pools' range, announced by every node
TEST_PREFIX_V6 = "2001:db8:ffff::240/128"


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


def unconfigure_node(node: NodeAddr) -> None:
    """Remove what configure_node set (the session and the announcement go with it)."""
    frr.configure(bgp.node_socket_dir(node), [f"no router bgp {bgp.NODE_ASN}"])


def set_bfd_everywhere(nodes: list[NodeAddr], bfd: bgp.Bfd) -> None:
    """The router's profile and each node's, live; returns once the router's sessions run at those timers."""
    bgp.set_bfd(bfd)
    for n in nodes:
        frr.configure(bgp.node_socket_dir(n), ["bfd", f"profile {bgp.BFD_PROFILE}", *bfd.profile_lines()])

    wait_bfd_negotiated(nodes, bfd)


def bfd_negotiated(nodes: list[NodeAddr], bfd: bgp.Bfd) -> bool:
    """Whether the router's BFD session with every node of NODES is up and runs at BFD's timers both ways."""
    peers = bgp.router_bfd_peers()
    return all(peers.get(n.ipv4, {}).get("status") == "up"
               and peers[n.ipv4].get("remote-transmit-interval") == bfd.interval_ms
               and peers[n.ipv4].get("receive-interval") == bfd.interval_ms
               and peers[n.ipv4].get("remote-detect-multiplier") == bfd.multiplier for n in nodes)


def wait_bfd_negotiated(nodes: list[NodeAddr], bfd: bgp.Bfd, timeout: float = 15) -> None:
    """Return once the router's BFD runs at BFD's timers with every node of NODES (a revived node's too)."""
    wait_for(lambda: bfd_negotiated(nodes, bfd), timeout=timeout,
             what=f"BFD at {bfd.interval_ms} ms x {bfd.multiplier} with every node")


def wait_all_up(nodes: list[NodeAddr], ipv6: bool, prefix: str = TEST_PREFIX, bfd: bool = True,
                timeout: float = 30) -> None:
    """Every node's session Established on the router, its BFD up (if BFD), and PREFIX via every node (each step
    within TIMEOUT)."""
    wanted = {n.ipv4 for n in nodes} | ({n.ipv6 for n in nodes} if ipv6 else set())
    wait_for(lambda: all(bgp.router_sessions().get(a) == "Established" for a in wanted), timeout=timeout,
             what="every node's session Established on the router")
    if bfd:
        wait_for(lambda: all(bgp.router_bfd_peers().get(n.ipv4, {}).get("status") == "up" for n in nodes),
                 timeout=15, what="BFD up with every node")
    wait_for(lambda: bgp.router_next_hops(prefix) == {n.ipv4 for n in nodes}, timeout=timeout,
             what=f"{prefix} via every node in the router's FIB")


def _watch(prefix: str, dead: str, started: threading.Event, result: dict[str, float], limit: float) -> None:
    """Poll the router's FIB until DEAD is no longer a next hop of PREFIX; record the monotonic time in RESULT."""
    started.set()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if dead not in bgp.router_next_hops(prefix):
            result["dropped"] = time.monotonic()
            return
        time.sleep(0.005)


def kill_and_time_drop(node: NodeAddr, prefix: str = TEST_PREFIX, limit: float = 15.0) -> float | None:
    """Hard-kill NODE (`lab.kill_node`: links cut, then its processes SIGKILLed) and return the seconds from the
    cut until the router's FIB no longer routes PREFIX via it (None if not within LIMIT). The node stays killed."""
    started, result = threading.Event(), {}
    watcher = threading.Thread(target=_watch, args=(prefix, node.ipv4, started, result, limit))
    watcher.start()
    started.wait()
    cut = lab.kill_node(node.name)
    watcher.join()
    return result["dropped"] - cut if "dropped" in result else None
