"""BGPPeer settings against the lab's router (issue 26): a TCP MD5 password from a Secret, rotated wrong and back;
eBGP multihop to the router's loopback, without and with `ebgpMultiHop`; IPv6 sessions and a dual-stack Service
over one session per family; a wrong ASN. Each test sets up the router's side and its BGPPeers and removes them;
one dual-stack Cluster Service is announced over whatever peers a test makes, and bgpclient, behind the router,
reaches it through the routes the nodes announced.

The speakers are restarted with their FRR's socket directory (the lab's `--bgp` part is added if the lab runs
without it, and removed after, the speakers restarted without it). A case that must not come up is watched for
QUIET_S, several of its connect timers (1 s).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from e2e.lab import bgp
from e2e.lab.config import NodeAddr
from e2e.lab.state import load_state
from e2e.testkit import bgppeering as peering
from e2e.testkit.bgpdrain import bgp_lab
from e2e.testkit.testing import Kube, wait_for
from ironlb.api.bgp_status import NodeBGPStatus, SessionState, SessionStatus
from ironlb.api.conditions import bgp_carriers, find
from ironlb.api.reasons import BGPSessionReason, ConditionType

pytestmark = pytest.mark.lab

GROUP = peering.GROUP
POOL = "bgp-peering"
ADDRESSES = ["203.0.113.184/30", "2001:db8:ffff::b00/124"]  # in no other test's pool
APP = "peerweb"
SECRET = "bgp-peering-auth"
RIGHT, WRONG = "ironlb-lab-md5", "not-the-routers"
QUIET_S = 4.0
Record = Callable[[str, object], None]


def pool_manifests() -> list[dict[str, Any]]:
    """The pool (both families, not auto-assigned) and its BGPAdvertisement to every peer."""
    return [{"apiVersion": GROUP, "kind": "IPAddressPool", "metadata": {"name": POOL},
             "spec": {"addresses": ADDRESSES, "autoAssign": False}},
            {"apiVersion": GROUP, "kind": "BGPAdvertisement", "metadata": {"name": POOL},
             "spec": {"ipAddressPools": [POOL]}}]


@pytest.fixture(scope="module")
def nodes(kube: Kube) -> Iterator[list[NodeAddr]]:
    """The lab with its router and IronLB's speakers in BGP mode; the pool and its advertisement, no peer yet."""
    with bgp_lab(kube, pool_manifests(), established=False) as live:
        yield live


@pytest.fixture(scope="module")
def vips(kube: Kube, nodes: list[NodeAddr]) -> Iterator[dict[str, str]]:
    """A dual-stack Cluster Service over pods on two nodes: its VIP by family ("4", "6"; IPv4 only in a lab
    without IPv6)."""
    families = ["IPv4", "IPv6"] if load_state().ipv6 else ["IPv4"]
    kube.deploy(APP, replicas=2, nodes=[nodes[0].name, nodes[1].name])
    kube.apply({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": APP, "namespace": "default", "annotations": {"ironlb.io/address-pool": POOL}},
                "spec": {"type": "LoadBalancer", "selector": {"app": APP}, "externalTrafficPolicy": "Cluster",
                         "ipFamilyPolicy": "RequireDualStack" if len(families) == 2 else "SingleStack",
                         "ipFamilies": families, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})

    def ingress() -> dict[str, str] | None:
        found = (kube.get("service", APP).get("status", {}).get("loadBalancer") or {}).get("ingress") or []
        by_family = {"6" if ":" in i["ip"] else "4": i["ip"] for i in found if i.get("ip")}
        return by_family if len(by_family) == len(families) else None
    try:
        yield wait_for(ingress, timeout=30, what=f"{APP}'s IPs")
    finally:
        kube.kubectl("delete", "service", APP, "--ignore-not-found", "--wait=false")
        kube.undeploy(APP)


@dataclass
class Peering:
    """One test's BGPPeers and Secrets (removed after it), and the speakers' logs from its start."""

    kube: Kube
    nodes: list[NodeAddr]
    logs: peering.SpeakerLogs
    applied: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, *manifests: dict[str, Any]) -> None:
        """Apply MANIFESTS, to be deleted after the test."""
        self.kube.apply(*manifests)
        known = {key(m) for m in self.applied}
        self.applied += [m for m in manifests if key(m) not in known]

    def remove(self) -> None:
        for m in reversed(self.applied):
            ns = ["-n", m["metadata"]["namespace"]] if "namespace" in m["metadata"] else []
            self.kube.kubectl("delete", m["kind"].lower(), m["metadata"]["name"], *ns, "--ignore-not-found")

    def status(self, node: NodeAddr, peer: str) -> SessionStatus | None:
        """NODE's session to PEER as its BGPNodeStatus says."""
        status = node_status(self.kube, node)
        return status.session(peer) if status is not None else None

    def all_sessions(self, peer: str, state: SessionState) -> dict[str, SessionStatus] | None:
        """Every node's session to PEER, once each one's BGPNodeStatus shows it in STATE (else None)."""
        found = {n.name: self.status(n, peer) for n in self.nodes}
        done = {k: v for k, v in found.items() if v is not None and v.state is state}
        return done if len(done) == len(found) else None

    def assert_no_crash(self) -> None:
        """Every speaker still configures its FRR, and none logged a traceback or was restarted."""
        assert all(daemon_ready(self.kube, n) for n in self.nodes), "a speaker's DaemonReady is not True"
        assert not self.logs.crashes(), self.logs.crashes()


def key(manifest: dict[str, Any]) -> tuple[str, str]:
    return manifest["kind"], manifest["metadata"]["name"]


def node_status(kube: Kube, node: NodeAddr) -> NodeBGPStatus | None:
    res = kube.kubectl("get", "bgpnodestatus", node.name, "-o", "json", check=False)
    return NodeBGPStatus.from_object(json.loads(res.stdout)) if res.returncode == 0 else None


def daemon_ready(kube: Kube, node: NodeAddr) -> bool:
    status = node_status(kube, node)
    cond = find({"conditions": list(status.conditions)}, ConditionType.BGP_DAEMON_READY) if status else None
    return bool(cond and cond.get("status") == "True")


def established() -> set[str]:
    """The router's neighbours whose session is Established."""
    return {a for a, state in bgp.router_sessions().items() if state == "Established"}


@pytest.fixture
def peers(kube: Kube, nodes: list[NodeAddr], vips: dict[str, str]) -> Iterator[Peering]:
    """A test's peering; before it the router holds no session, after it none again."""
    wait_for(lambda: not established(), timeout=30, what="the router without sessions")
    made = Peering(kube, nodes, peering.SpeakerLogs(nodes))
    try:
        yield made
    finally:
        made.remove()
        wait_for(lambda: not established(), timeout=30, what="the router without sessions after the test")


def wait_served(kube: Kube, vip: str, next_hops: set[str] | None, timeout: float = 30) -> set[str]:
    """VIP in the router's kernel FIB via exactly NEXT_HOPS (None: any), and bgpclient gets an answer from it;
    the next hops."""
    prefix = f"{vip}/{128 if ':' in vip else 32}"
    wanted = sorted(next_hops) if next_hops is not None else "any next hop"
    hops = wait_for(lambda: (found := bgp.router_next_hops(prefix)) and (next_hops is None or found == next_hops)
                    and found, timeout=timeout, what=f"{prefix} via {wanted} in the router's FIB")
    host = f"[{vip}]" if ":" in vip else vip
    wait_for(lambda: kube.curl("bgpclient", f"http://{host}/"), timeout=15, what=f"bgpclient -> {vip}")
    return hops


def stays_down(addresses: set[str], seconds: float = QUIET_S) -> bool:
    """No session from ADDRESSES comes up at the router for SECONDS."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if addresses & established():
            return False
        time.sleep(0.2)
    return True


def ipv4s(nodes: list[NodeAddr]) -> set[str]:
    return {n.ipv4 for n in nodes}


def test_password_from_a_secret_wrong_then_right_then_rotated(kube: Kube, nodes: list[NodeAddr],
                                                              vips: dict[str, str], peers: Peering,
                                                              record_property: Record) -> None:
    """The router asks every node for a TCP MD5 password; a BGPPeer takes it from a Secret in IronLB's namespace.
    Wrong at first: no session, and the router's kernel drops the nodes' SYNs (FRR's words for it are only that no
    OPEN came). The Secret set right: Established, no last error, the VIP in the router's FIB via every node,
    bgpclient reaches it. Rotated to a wrong password: every session goes (the last error is the Cease bgpd sent on
    the change) and none comes back. Rotated back: up again, the VIP served again. Nothing crashes."""
    name, nodes_v4 = "md5-router", ipv4s(nodes)
    with peering.router_password(nodes, RIGHT):
        dropped = peering.md5_failures()
        peers.apply(peering.password_secret(SECRET, WRONG), peering.peer(name, passwordSecret={"name": SECRET}))
        assert stays_down(nodes_v4), "a session came up with the wrong password"
        never_up = wait_for(lambda: said_everywhere(peers, name, BGPSessionReason.CONNECT_FAILED), timeout=10,
                            what="BGPNodeStatus: ConnectFailed on every node")
        print(f"\nwrong password from the start, BGPNodeStatus: {never_up}")
        assert peering.md5_failures() > dropped, "the router's kernel dropped no segment for its MD5 signature"
        peers.assert_no_crash()

        started = time.monotonic()
        peers.apply(peering.password_secret(SECRET, RIGHT))
        wait_for(lambda: nodes_v4 <= established(), timeout=30, what="every session Established (password)")
        record_property("established_after_secret_s", round(time.monotonic() - started, 2))
        up = wait_for(lambda: peers.all_sessions(name, SessionState.ESTABLISHED), timeout=15,
                      what="BGPNodeStatus: Established on every node")
        assert all(s.last_error is None for s in up.values()), up  # it never went down
        wait_served(kube, vips["4"], nodes_v4)

        peers.apply(peering.password_secret(SECRET, WRONG))
        wait_for(lambda: not nodes_v4 & established(), timeout=15, what="every session down (rotated wrong)")
        assert stays_down(nodes_v4), "a session came up with the wrong password"
        wait_for(lambda: not bgp.router_next_hops(f"{vips['4']}/32"), timeout=15, what="the VIP withdrawn")
        down = wait_for(lambda: said_everywhere(peers, name, BGPSessionReason.NOTIFICATION_SENT), timeout=10,
                        what="BGPNodeStatus: the Cease on every node")
        print(f"\nrotated to a wrong password, BGPNodeStatus: {down}")
        peers.assert_no_crash()

        started = time.monotonic()
        peers.apply(peering.password_secret(SECRET, RIGHT))
        wait_for(lambda: nodes_v4 <= established(), timeout=30, what="every session back (password rotated)")
        record_property("rotated_back_established_s", round(time.monotonic() - started, 2))
        wait_for(lambda: peers.all_sessions(name, SessionState.ESTABLISHED), timeout=15,
                 what="BGPNodeStatus: Established on every node")
        wait_served(kube, vips["4"], nodes_v4)
        peers.assert_no_crash()


def said_everywhere(peers: Peering, peer: str, reason: BGPSessionReason) -> dict[str, SessionStatus] | None:
    """Every node's session to PEER, when each is down with REASON as its last error (else None)."""
    found = {n.name: peers.status(n, peer) for n in peers.nodes}
    ok = all(s is not None and s.state is not SessionState.ESTABLISHED and s.last_error is not None
             and s.last_error.reason is reason for s in found.values())
    return {k: v for k, v in found.items() if v is not None} if ok else None


@pytest.mark.parametrize("multihop", [False, True], ids=["single-hop", "ebgp-multihop"])
def test_ebgp_multihop_to_the_routers_loopback(kube: Kube, nodes: list[NodeAddr], vips: dict[str, str],
                                               peers: Peering, multihop: bool) -> None:
    """The router peers from its loopback, off the node segment: without `ebgpMultiHop` a node's bgpd does not
    even dial it (an eBGP peer must be on a connected network), its status says so; with it, Established and the
    VIP in the router's FIB via every node."""
    with peering.multihop_router(nodes) as loopback:
        peers.apply(peering.peer("loopback", loopback, ebgpMultiHop=multihop))
        if not multihop:
            assert stays_down(ipv4s(nodes)), "a single-hop session to the loopback came up"
            down = wait_for(lambda: said_everywhere(peers, "loopback", BGPSessionReason.CONNECT_FAILED), timeout=10,
                            what="BGPNodeStatus: ConnectFailed on every node")
            print(f"\nsingle-hop to {loopback}, BGPNodeStatus: {down}")
            assert not bgp.router_next_hops(f"{vips['4']}/32")
        else:
            wait_for(lambda: ipv4s(nodes) <= established(), timeout=30, what="every multihop session Established")
            wait_for(lambda: peers.all_sessions("loopback", SessionState.ESTABLISHED), timeout=15,
                     what="BGPNodeStatus: Established on every node")
            wait_served(kube, vips["4"], ipv4s(nodes))
        peers.assert_no_crash()


def needs_ipv6() -> None:
    if not load_state().ipv6:
        pytest.skip("the lab runs without IPv6 (the suite's lab is dual-stack: conftest.py)")


def test_an_ipv6_session_carries_the_ipv6_vip(kube: Kube, nodes: list[NodeAddr], vips: dict[str, str],
                                              peers: Peering) -> None:
    """A BGPPeer on the router's IPv6 address: Established from every node's IPv6 address, the IPv6 VIP in the
    router's IPv6 FIB via every node's link-local address, and bgpclient reaches it over IPv6."""
    needs_ipv6()
    peers.apply(peering.peer("router-v6", bgp.ROUTER_IP_V6))
    wait_for(lambda: {n.ipv6 for n in nodes} <= established(), timeout=30, what="every IPv6 session Established")
    wait_for(lambda: peers.all_sessions("router-v6", SessionState.ESTABLISHED), timeout=15,
             what="BGPNodeStatus: Established on every node")
    wait_served(kube, vips["6"], {peering.link_local(n) for n in nodes})
    peers.assert_no_crash()


@pytest.mark.parametrize("disable_mp", [True, False], ids=["one-family-per-session", "multiprotocol"])
def test_a_dual_stack_service_over_an_ipv4_and_an_ipv6_session(kube: Kube, nodes: list[NodeAddr],
                                                               vips: dict[str, str], peers: Peering,
                                                               disable_mp: bool) -> None:
    """Two BGPPeers, the router's IPv4 and IPv6 address. With `disableMP` each VIP goes over its own family's
    session only (the router holds its paths from those neighbours alone, the condition and BGPNodeStatus say
    the same); without, both sessions carry both. Either way both VIPs are in the FIB and bgpclient reaches both."""
    needs_ipv6()
    v4, v6 = ipv4s(nodes), {n.ipv6 for n in nodes}
    peers.apply(peering.peer("dual-v4", disableMP=disable_mp),
                peering.peer("dual-v6", bgp.ROUTER_IP_V6, disableMP=disable_mp))
    wait_for(lambda: v4 | v6 <= established(), timeout=30, what="both sessions Established on every node")
    wait_served(kube, vips["4"], v4)
    # Over its own session an IPv6 route's next hop is the node's link-local address; over an IPv4 session too,
    # FRR may give another of the node's addresses: without disableMP any next hop that serves will do.
    hops = wait_served(kube, vips["6"], {peering.link_local(n) for n in nodes} if disable_mp else None)
    print(f"\n{vips['6']} via {sorted(hops)}")
    want = {"4": v4, "6": v6} if disable_mp else {"4": v4 | v6, "6": v4 | v6}
    got: dict[str, set[str]] = {}

    def paths_settled() -> bool:
        got.update({f: peering.path_peers(f"{vips[f]}/{32 if f == '4' else 128}") for f in want})
        return got == want
    try:
        wait_for(paths_settled, timeout=15, what=f"the router's paths from {want}")
    except AssertionError:
        assert got == want  # which neighbours the router holds each VIP from, against which it should
        raise
    # A real FRR's running config reads back as applied: a restarted speaker would send nothing.
    assert all({p.name: p.disable_mp for p in peering.node_peers(n).values()} == {
        "dual-v4": disable_mp, "dual-v6": disable_mp} for n in nodes)
    if disable_mp:
        def named() -> dict[str, set[tuple[str, ...]]]:
            carriers = bgp_carriers(kube.get("service", APP).get("status"))
            return {ip: set(by_node.values()) for ip, by_node in carriers.items()}
        wanted = {vips["4"]: {("dual-v4",)}, vips["6"]: {("dual-v6",)}}
        wait_for(lambda: named() == wanted, timeout=15, what=f"BGPAnnounced naming {wanted}")

        def counted() -> bool:
            sessions = [(peers.status(n, "dual-v4"), peers.status(n, "dual-v6")) for n in nodes]
            return all(a is not None and b is not None and (a.prefixes_sent_ipv4, a.prefixes_sent_ipv6,
                                                            b.prefixes_sent_ipv4, b.prefixes_sent_ipv6) == (1, 0, 0, 1)
                       for a, b in sessions)
        wait_for(counted, timeout=15, what="BGPNodeStatus: one IPv4 prefix to dual-v4, one IPv6 to dual-v6")
    peers.assert_no_crash()


@pytest.mark.parametrize(("spec", "reason"), [
    ({"peerASN": 64999}, BGPSessionReason.NOTIFICATION_SENT),  # the router's OPEN is not from the ASN asked for
    ({"myASN": 64999}, BGPSessionReason.NOTIFICATION_RECEIVED),  # the router expects the nodes' ASN
], ids=["wrong-peerASN", "wrong-myASN"])
def test_a_wrong_asn_is_no_session_and_a_clear_reason(kube: Kube, nodes: list[NodeAddr], vips: dict[str, str],
                                                      peers: Peering, spec: dict[str, int],
                                                      reason: BGPSessionReason) -> None:
    """A BGPPeer whose ASN does not match the router's session: never Established; each node's BGPNodeStatus
    gives the NOTIFICATION (OPEN Message Error, Bad Peer AS) and who sent it; nothing crashes."""
    peers.apply(peering.peer("wrong-asn", **spec))
    assert stays_down(ipv4s(nodes)), "a session with a wrong ASN came up"
    down = wait_for(lambda: said_everywhere(peers, "wrong-asn", reason), timeout=10,
                    what=f"BGPNodeStatus: {reason.value} on every node")
    print(f"\nwrong ASN {spec}, BGPNodeStatus: {down}")
    assert all(s.last_error is not None and "Bad Peer AS" in s.last_error.message for s in down.values()), down
    peers.assert_no_crash()
