"""Taking over from MetalLB's BGP mode with no IP changed (lightweight lab with its router): MetalLB's native
speakers announce COUNT Cluster Services to the router from every node, `ironlb migrate metallb --apply` carries
its BGPPeer, Community and BGPAdvertisement, MetalLB stops, IronLB's speakers start in BGP mode; every IP stays,
the router routes it via every node again, and bgpclient reaches it again. The gap is measured per IP.

No BFDProfile: MetalLB's native mode (the lab's; its FRR mode needs MetalLB's own FRR beside each speaker) refuses
a configuration holding one, so a MetalLB user of that mode has none to carry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.lab import bgp, frr, ironlb_procs, lab, metallb, procs, workload
from e2e.lab.config import KUBECONFIG, REPO, NodeAddr
from e2e.lab.state import load_state
from e2e.testkit import bgpmetallb
from e2e.testkit.bgpdrain import leave_bgp_mode
from e2e.testkit.testing import Kube, assigned_ips, ingress_ips, wait_for
from ironlb.api.bgp_status import NodeBGPStatus, SessionState

pytestmark = pytest.mark.lab
NS = APP = POOL = "bgp-takeover"
ADDRESSES = "198.51.100.208/28"  # in no other test's pool
COUNT = 10
NAMES = [f"svc-{i}" for i in range(COUNT)]
COMMUNITY_ALIAS, COMMUNITY = "takeover", "64513:26"
LAB_PEER = next(m for m in bgp.metallb_manifests() if m["kind"] == "BGPPeer")  # what `metallb.start` applies
PEER = LAB_PEER["metadata"]["name"]
METALLB_UP_S = 120  # as benchmarks.bgp allows: MetalLB's sessions once came up much later than usual
GAP_BOUND_S = 30.0  # generous for a loaded 2-core machine; the measured gaps are printed
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"


def metallb_objects() -> list[dict[str, Any]]:
    """The pool, Community and BGPAdvertisement as a MetalLB user writes them (beside the lab's BGPPeer)."""
    meta = {"name": POOL, "namespace": metallb.NAMESPACE}
    return [
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": meta,
         "spec": {"addresses": [ADDRESSES], "autoAssign": False}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "Community", "metadata": meta,
         "spec": {"communities": [{"name": COMMUNITY_ALIAS, "value": COMMUNITY}]}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": meta,
         "spec": {"ipAddressPools": [POOL], "peers": [PEER], "communities": [COMMUNITY_ALIAS],
                  "aggregationLength": 32}},
    ]


def migrated() -> list[tuple[str, str]]:
    """The IronLB objects the migration makes of the lab's MetalLB objects and this test's: (resource, name)."""
    manifests = [*bgp.metallb_manifests(), *metallb_objects()]
    return [(f"{m['kind'].lower()}s.ironlb.io", m["metadata"]["name"]) for m in manifests if m["kind"] != "Community"]


def service(i: int) -> dict[str, Any]:
    """A Cluster Service written for MetalLB: its pool by the metallb.io annotation."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"svc-{i}", "namespace": NS, "annotations": {"metallb.io/address-pool": POOL}},
            "spec": {"type": "LoadBalancer", "selector": {"app": APP}, "externalTrafficPolicy": "Cluster",
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def ips(kube: Kube) -> dict[str, str | None]:
    """Each Service's ingress IP (None while it has none)."""
    return ingress_ips(kube, NS, NAMES)


def routed_everywhere(vips: list[str], nodes: list[NodeAddr]) -> bool:
    """Whether the router's FIB routes every VIP via every node."""
    fib, wanted = bgp.router_fib(), {n.ipv4 for n in nodes}
    return all(fib.get(ip) == wanted for ip in vips)


def path_communities(ip: str) -> list[set[str]]:
    """The communities of each path the router holds for IP, one set per path."""
    out = frr.vtysh(bgp.ROUTER_DIR, f"show bgp ipv4 unicast {ip}/32 json", check=False).stdout
    paths = json.loads(out).get("paths", []) if out.strip().startswith("{") else []
    return [set((p.get("community") or {}).get("list", [])) for p in paths]


def carries_community(vips: list[str], nodes: list[NodeAddr]) -> bool:
    """Whether the router holds every VIP from every node, each path with COMMUNITY."""
    return all(len(paths := path_communities(ip)) == len(nodes) and all(COMMUNITY in c for c in paths)
               for ip in vips)


@pytest.fixture
def metallb_bgp(kube: Kube) -> Iterator[tuple[list[NodeAddr], dict[str, str]]]:
    """MetalLB alone in BGP mode, serving COUNT Services from its pool: the router routes each via every node,
    with the advertisement's community, and bgpclient reaches each one. Afterwards MetalLB and its objects are
    gone, IronLB runs, the migrated objects are deleted and the lab is as it was (with or without its router)."""
    attached = lab.attach_bgp()
    nodes = load_state().live_nodes
    try:
        bgpmetallb.start_in_place_of_ironlb()
        kube.kubectl("create", "namespace", NS)
        kube.deploy(APP, replicas=len(nodes), namespace=NS)
        kube.apply(*metallb_objects())
        kube.apply(*[service(i) for i in range(COUNT)])
        before = wait_for(lambda: assigned_ips(kube, NS, NAMES), timeout=60,
                          what="MetalLB assigning every Service")
        vips = sorted(before.values())
        wait_for(lambda: routed_everywhere(vips, nodes), timeout=METALLB_UP_S, interval=0.5,
                 what="MetalLB's routes: every VIP via every node at the router")
        wait_for(lambda: carries_community(vips, nodes), timeout=10, what=f"MetalLB's paths with {COMMUNITY}")
        for ip in vips:
            wait_for(lambda ip=ip: kube.curl("bgpclient", f"http://{ip}/"), timeout=30,
                     what=f"bgpclient -> {ip} through MetalLB's routes")
        yield nodes, before
    finally:
        metallb.stop()  # its processes, its namespace and CRDs (every metallb.io object goes with them)
        if not procs.running("operator"):
            ironlb_procs.start_ironlb()
        kube.kubectl("delete", "namespace", NS, "--wait=true", timeout=180, check=False)
        workload.delete(APP)
        for resource, name in migrated():
            kube.kubectl("delete", resource, name, "--ignore-not-found", "--wait=false", check=False)
        if attached:
            leave_bgp_mode()
        else:  # the speakers stay in BGP mode, with no BGPPeer left: their FRR closes every session
            wait_for(lambda: not any(bgp.router_sessions().get(n.ipv4) for n in nodes), timeout=30,
                     what="the nodes' sessions closed once the migrated BGPPeer went")


def migrate_apply() -> str:
    """`ironlb migrate metallb --apply` against the lab; its output (the notes)."""
    res = subprocess.run([str(Path(sys.executable).parent / "ironlb"), "migrate", "metallb", "--apply"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "KUBECONFIG": str(KUBECONFIG), "PYTHONPATH": str(REPO / "src")})
    assert res.returncode == 0, res.stderr
    return res.stdout + res.stderr


def spec(kube: Kube, resource: str, name: str) -> dict[str, Any]:
    """An IronLB object's spec."""
    return kube.get(resource, name, None)["spec"]


def assert_carried(kube: Kube) -> None:
    """IronLB's BGPPeer, BGPAdvertisement and pool hold MetalLB's fields; the Community's alias became its value."""
    peer = spec(kube, "bgppeers.ironlb.io", PEER)
    assert {k: peer.get(k) for k in LAB_PEER["spec"]} == LAB_PEER["spec"], peer
    # MetalLB's CRD stored dualStackAddressFamily: false (a session keeps to its own family): IronLB's disableMP.
    assert peer.get("disableMP") is True, peer
    advertisement = spec(kube, "bgpadvertisements.ironlb.io", POOL)
    assert advertisement["ipAddressPools"] == [POOL] and advertisement["peers"] == [PEER], advertisement
    assert advertisement["communities"] == [COMMUNITY] and advertisement["aggregationLength"] == 32, advertisement
    assert spec(kube, "ipaddresspools.ironlb.io", POOL)["addresses"] == [ADDRESSES]


class FirstAnswers:
    """The firstanswer probe from bgpclient over VIPS, started now."""

    def __init__(self, vips: list[str], duration: float) -> None:
        cmd = procs.netns_cmd(bgp.BGPCLIENT_NS, [sys.executable, "-m", "e2e.probes.firstanswer", *vips,
                                                 "--duration", str(duration)])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(REPO)})
        self.duration = duration

    def collect(self) -> dict[str, float]:
        """VIP -> when (monotonic) bgpclient first had its answer, for each that answered; once the probe ended."""
        try:
            stdout, _ = self.proc.communicate(timeout=self.duration + 15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return {host: float(end) for host, _, end in (line.split() for line in stdout.splitlines())}


def time_routed(vips: list[str], nodes: list[NodeAddr], timeout: float) -> tuple[float | None, dict[str, float]]:
    """When (monotonic) the router first had every node's session Established, and VIP -> when its FIB first
    routed it via every node, for each that was within TIMEOUT."""
    wanted, routed, established = {n.ipv4 for n in nodes}, {}, None
    deadline = time.monotonic() + timeout
    while len(routed) < len(vips) and time.monotonic() < deadline:
        if established is None and all(bgp.router_sessions().get(a) == "Established" for a in wanted):
            established = time.monotonic()
        fib = bgp.router_fib()
        now = time.monotonic()
        routed.update({ip: now for ip in vips if ip not in routed and fib.get(ip) == wanted})
        time.sleep(0.02)
    return established, routed


def node_established(kube: Kube, node: str) -> bool:
    """Whether NODE's BGPNodeStatus shows its session with PEER Established."""
    res = kube.kubectl("get", "bgpnodestatuses.ironlb.io", node, "-o", "json", check=False)
    session = res.returncode == 0 and NodeBGPStatus.from_object(json.loads(res.stdout)).session(PEER)
    return bool(session) and session.state is SessionState.ESTABLISHED


def test_takeover_from_metallb_bgp_changes_no_ip(
        kube: Kube, metallb_bgp: tuple[list[NodeAddr], dict[str, str]]) -> None:
    nodes, before = metallb_bgp
    vips = sorted(before.values())
    notes = migrate_apply()
    print(f"\nmigrate: {notes.strip()}")
    assert f"BGPPeer {PEER}:" not in notes, "the lab's BGPPeer is carried whole"
    assert_carried(kube)

    procs.stop_all(metallb.PROC_PREFIX)  # MetalLB scaled down
    stopped = time.monotonic()
    # Its sessions close with its processes and the router withdraws their routes; IronLB's FRR may open its own
    # sessions from the same addresses only then (one session per address: a second one collides with the first).
    wait_for(lambda: not set(vips) & set(bgp.router_fib()), timeout=15, interval=0.02,
             what="MetalLB's routes withdrawn at the router")
    withdrawn = time.monotonic() - stopped
    probe = FirstAnswers(vips, duration=GAP_BOUND_S + 30)  # no route now: any answer takes IronLB's
    ironlb_procs.start_ironlb()  # on this lab, its speakers in BGP mode
    started = time.monotonic() - stopped
    established, routed_at = time_routed(vips, nodes, timeout=GAP_BOUND_S + 30)
    routed = {ip: at - stopped for ip, at in routed_at.items()}
    answered = {ip: at - stopped for ip, at in probe.collect().items()}
    never = float("inf")
    print(f"after MetalLB stopped: its routes withdrawn {withdrawn:.2f} s, IronLB's processes started "
          f"{started:.2f} s, every node's session Established at the router "
          f"{(established or never) - stopped:.2f} s; per IP, seconds until the router routed it via every node "
          "from IronLB / until bgpclient had an answer:")
    for ip in vips:
        print(f"  {ip}: {routed.get(ip, never):.2f} / {answered.get(ip, never):.2f}")
    gap = max(answered.get(ip, never) for ip in vips)
    print(f"takeover gap (BGP): every IP answering {gap:.2f} s after MetalLB stopped (first "
          f"{min(answered.values(), default=never):.2f} s), routed via every node after "
          f"{max(routed.values(), default=never):.2f} s")
    assert set(routed) == set(vips), f"never routed via every node: {sorted(set(vips) - set(routed))}"
    assert set(answered) == set(vips), f"never answered through IronLB: {sorted(set(vips) - set(answered))}"
    assert gap < GAP_BOUND_S, gap

    assert ips(kube) == before, "an IP changed in the takeover"
    wait_for(lambda: all(kube.get("service", n, NS)["metadata"].get("annotations", {})
                         .get("ironlb.io/allocated-from-pool") == POOL for n in before), timeout=30,
             what="IronLB recording every Service as its own")
    wait_for(lambda: all(FINALIZER in (kube.get("service", n, NS)["metadata"].get("finalizers") or [])
                         for n in before), timeout=30, what="the cleanup finalizer on every Service taken over")
    wait_for(lambda: all(node_established(kube, n.name) for n in nodes), timeout=30,
             what=f"every node's BGPNodeStatus: its session with {PEER} Established")
    # The migrated advertisement's community (MetalLB's alias, written out) reached IronLB's FRR and the router.
    wait_for(lambda: carries_community(vips, nodes), timeout=10, what=f"IronLB's paths with {COMMUNITY}")
