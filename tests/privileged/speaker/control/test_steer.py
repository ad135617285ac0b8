"""Steering on a real kernel: the rendered table in a node's namespace sends a VIP's new connections to live
endpoints only, masqueraded; removing it moves no established connection; a dead host is confirmed dead.

Namespaces: a client, the announcing node (forwarding, with the table), and one namespace per pod, each on a
veth of its own; the third pod's link leads nowhere (its node is dead: nothing answers there).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from ironlb.api.reasons import SteeringReason
from ironlb.speaker.control.steer.confirm import host_answers
from ironlb.speaker.control.steer.conntrack import forget_flows
from ironlb.speaker.control.steer.nft import TABLE, chain_name, render
from ironlb.speaker.control.steer.plan import Steer, SteeringPlan
from tests.privileged.wire import inside

pytestmark = pytest.mark.privileged
VIP = "203.0.113.7"
PODS = {"pod1": "198.19.1.5", "pod2": "198.19.2.5"}  # live; 198.19.3.5 is on the dead node
DEAD_POD = "198.19.3.5"
REAPPLIES, REAPPLY_CLIENTS, REAPPLY_OTHER_PORTS = 200, 4, 300


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _link(a: str, a_dev: str, a_addr: str, b: str, b_dev: str, b_addr: str | None) -> None:
    """A veth between namespaces A and B, addressed (B's end left without an address when None)."""
    _ip("-n", a, "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", b)
    _ip("-n", a, "addr", "add", a_addr, "dev", a_dev)
    _ip("-n", a, "link", "set", a_dev, "up")
    if b_addr:
        _ip("-n", b, "addr", "add", b_addr, "dev", b_dev)
    _ip("-n", b, "link", "set", b_dev, "up")


def _serve(netns: str, address: str, name: str, stop: threading.Event) -> threading.Thread:
    """A TCP server at ADDRESS:8080 in NETNS answering each line with its name and the peer it sees."""
    with inside(netns):
        listener = socket.create_server((address, 8080))
    listener.settimeout(0.2)

    def loop() -> None:
        with listener:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    conn, peer = listener.accept()
                    threading.Thread(target=_echo, args=(conn, f"{name} {peer[0]}"), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _echo(conn: socket.socket, reply: str) -> None:
    with conn:
        conn.settimeout(5)
        with contextlib.suppress(OSError):
            while conn.recv(64):
                conn.sendall(reply.encode() + b"\n")


@pytest.fixture
def lab() -> Iterator[dict[str, str]]:
    """The namespaces (name by role), wired and serving; removed afterwards."""
    tag = os.getpid()
    names = {role: f"ilbst-{role}-{tag}" for role in ("client", "node", "pod1", "pod2", "dead")}
    stop = threading.Event()
    try:
        for netns in names.values():
            _ip("netns", "add", netns)
        node = names["node"]
        _ip("netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _link(node, "c0", "198.18.33.1/24", names["client"], "eth0", "198.18.33.2/24")
        _ip("-n", names["client"], "route", "add", f"{VIP}/32", "via", "198.18.33.1")
        for i, pod in enumerate(("pod1", "pod2"), 1):
            _link(node, f"p{i}", f"198.19.{i}.1/24", names[pod], "eth0", f"{PODS[pod]}/24")
            _ip("-n", names[pod], "route", "add", "default", "via", f"198.19.{i}.1")
            _serve(names[pod], PODS[pod], pod, stop)
        _link(node, "p3", "198.19.3.1/24", names["dead"], "eth0", None)  # nobody at 198.19.3.5
        yield names
    finally:
        stop.set()
        for netns in names.values():
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def _apply(netns: str, script: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=script, text=True, check=True,
                   capture_output=True)


def _ask(client: str, timeout: float = 2.0) -> str:
    """One new connection from the client to VIP:80: who answered, and the peer address it saw."""
    with inside(client):
        sock = socket.create_connection((VIP, 80), timeout=timeout)
    with sock:
        sock.sendall(b"?")
        return sock.recv(64).decode().strip()


def _steered(affinity: bool = False, others: int = 0) -> str:
    """The table steering VIP:80 to the live pods; with OTHERS more steered ports of VIP (nobody asks them)."""
    targets = tuple((a, 8080) for a in PODS.values())
    steers = [Steer("ns/web", VIP, "TCP", 80, targets, affinity)]
    steers += [Steer(f"ns/other{i}", VIP, "TCP", 1000 + i, targets) for i in range(others)]
    return render(SteeringPlan(tuple(steers), {s.service: SteeringReason.STEERED for s in steers}))


def test_new_connections_reach_live_endpoints_only_masqueraded_by_the_node(lab: dict[str, str]) -> None:
    _apply(lab["node"], _steered())
    answers = Counter(_ask(lab["client"]) for _ in range(40))
    # Every connection answered (none sent toward the dead node's pod), both live pods used, and each saw
    # the node's own address on its link: its replies come back through the node.
    assert set(answers) == {"pod1 198.19.1.1", "pod2 198.19.2.1"}, answers
    assert sum(answers.values()) == 40


def test_client_ip_affinity_keeps_a_client_on_one_endpoint(lab: dict[str, str]) -> None:
    _apply(lab["node"], _steered(affinity=True))
    assert len({_ask(lab["client"]) for _ in range(20)}) == 1


def test_emptying_the_table_moves_no_established_connection(lab: dict[str, str]) -> None:
    # No other NAT chain in this namespace (as on a node whose service proxy hooks none): the emptied
    # table keeps the kernel translating the connection it steered.
    _apply(lab["node"], _steered())
    with inside(lab["client"]):
        sock = socket.create_connection((VIP, 80), timeout=2)
    with sock:
        sock.sendall(b"?")
        first = sock.recv(64)
        _apply(lab["node"], render(SteeringPlan(), standing=True))  # Kubernetes caught up: nothing steered
        listed = subprocess.run(["ip", "netns", "exec", lab["node"], "nft", "list", "table", "inet", TABLE],
                                capture_output=True, text=True, check=True).stdout
        assert "dnat" not in listed
        sock.sendall(b"?")
        assert sock.recv(64) == first  # the same pod, through the same translation
        with pytest.raises(OSError):
            _ask(lab["client"], timeout=0.5)  # while a new connection is steered no more (nobody else serves here)


def test_a_dead_host_is_confirmed_and_a_live_one_is_not(lab: dict[str, str]) -> None:
    async def answers(address: str, port: int) -> bool:
        return await host_answers(address, port, 0.25)

    with inside(lab["node"]):
        assert asyncio.run(answers(PODS["pod1"], 8080))  # listening: accepted
        assert asyncio.run(answers(PODS["pod1"], 10256))  # nothing listening, but the kernel refuses: alive
        assert not asyncio.run(answers(DEAD_POD, 10256))  # nobody there: no answer within the timeout


def test_reapplying_the_table_leaves_no_new_connection_unsteered(lab: dict[str, str]) -> None:
    # A new connection whose first packet crosses the kernel's switch to a reapplied table must meet the old
    # table or the new one, whole. Many steered ports besides the one asked make each switch longer, and
    # clients asking at once during many reapplies make a crossing likely.
    script = _steered(others=REAPPLY_OTHER_PORTS)
    _apply(lab["node"], script)
    stop = threading.Event()
    outcomes: Counter[str] = Counter()

    def ask() -> None:
        while not stop.is_set():
            try:
                _ask(lab["client"], timeout=2.0)
                outcomes["steered"] += 1
            except TimeoutError:
                outcomes["slow"] += 1  # a loaded machine, not this: an unsteered connection fails at once
            except OSError as exc:
                outcomes[errno.errorcode.get(exc.errno or 0, str(exc))] += 1

    askers = [threading.Thread(target=ask, daemon=True) for _ in range(REAPPLY_CLIENTS)]
    for asker in askers:
        asker.start()
    try:
        for _ in range(REAPPLIES):
            _apply(lab["node"], script)
    finally:
        stop.set()
        for asker in askers:
            asker.join(timeout=5)
    assert outcomes["steered"] > 1000 and set(outcomes) <= {"steered", "slow"}, outcomes


def test_a_reapply_refills_every_chain_set_and_map_a_packet_meets_and_replaces_none(lab: dict[str, str]) -> None:
    # What makes a reapply atomic for a new connection: the hooked chains, and every set and map a rule looks
    # up, are the same kernel objects before and after (refilled in one transaction, never replaced), and no
    # rule carries an anonymous set (one is replaced with its rule).
    targets = tuple((a, 8080) for a in PODS.values())
    web, other = Steer("ns/web", VIP, "TCP", 80, targets), Steer("ns/other", VIP, "UDP", 53, targets)
    _apply(lab["node"], render(SteeringPlan((web, other))))
    first = _objects(lab["node"])
    _apply(lab["node"], render(SteeringPlan((web, other))))
    assert _objects(lab["node"]) == first
    moved = Steer("ns/web", VIP, "TCP", 80, targets[:1], sources=("198.18.33.0/24", "198.18.33.2/32"))
    _apply(lab["node"], render(SteeringPlan((moved,)), stale=(other,)))
    gone = chain_name(other)
    assert _objects(lab["node"]) == {key: handle for key, handle in first.items() if not key[1].startswith(gone)}
    listed = subprocess.run(["ip", "netns", "exec", lab["node"], "nft", "list", "table", "inet", TABLE],
                            capture_output=True, text=True, check=True).stdout
    lookups = [line for line in listed.splitlines() if " dnat " in line or " saddr " in line]
    assert len(lookups) == 2 and all("@" in line for line in lookups), listed  # named, not anonymous
    assert "198.18.33.0/24" in listed and "198.18.33.2" not in listed  # the ranges, merged


def _objects(netns: str) -> dict[tuple[str, str], int]:
    """The chains, sets and maps of the steering table in NETNS: (kind, name) -> the kernel's handle."""
    listed = json.loads(subprocess.run(["ip", "netns", "exec", netns, "nft", "-j", "-a", "list", "table", "inet",
                                        TABLE], capture_output=True, text=True, check=True).stdout)
    return {(kind, item[kind]["name"]): item[kind]["handle"] for item in listed["nftables"]
            for kind in ("chain", "set", "map") if kind in item}


def test_a_flow_that_reached_the_dead_pod_is_forgotten_and_its_port_steered_afresh(lab: dict[str, str]) -> None:
    # Before steering, the service proxy sent a client's connection to the dead pod: unanswered, its entry stays.
    proxy = ("table inet e2e_proxy {\n chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n"
             f"  ip daddr {VIP} tcp dport 80 dnat ip to {DEAD_POD}:8080\n }}\n}}\n")
    _apply(lab["node"], proxy)
    port = 40123
    with pytest.raises(OSError):
        _ask_from(lab["client"], port, timeout=0.3)
    _apply(lab["node"], _steered())
    with pytest.raises(OSError):  # steering alone does not help this port: its old entry still leads to the dead pod
        _ask_from(lab["client"], port, timeout=0.3)
    with inside(lab["node"]):
        assert asyncio.run(forget_flows(DEAD_POD))
    assert _ask_from(lab["client"], port).split()[0] in PODS  # translated afresh: a live pod


def _ask_from(client: str, port: int, timeout: float = 2.0) -> str:
    """`_ask` from a given source port."""
    with inside(client):
        sock = socket.create_connection((VIP, 80), timeout=timeout, source_address=("198.18.33.2", port))
    with sock:
        sock.sendall(b"?")
        return sock.recv(64).decode().strip()
