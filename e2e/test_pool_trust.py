"""A Service's owner cannot steer the speakers: what is announced, and where, comes from the pools' own ranges.

With the operator frozen (as while no replica holds the Lease, so nothing writes the Service back):
- editing `ironlb.io/allocated-from-pool` to name another pool does not move the announcement onto that
  pool's nodes: the VIP stays answered by its own pool's node only, checked at every probe for seconds;
- an address outside every pool, patched into the Service's status, is never answered by ARP, and the
  Service says why (Announced False, reason NotInPool, with a Warning Event; the metric counts it).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator

import pytest

from e2e.lab import lab, procs
from e2e.lab.config import REPO
from e2e.testkit.testing import Kube, pool_manifests, speaker_hears_all, wait_for

pytestmark = pytest.mark.lab
NODES = ("node-1", "node-2", "node-3")
POOL_A, POOL_B = "e2e-trust-a", "e2e-trust-b"
OUTSIDE = "203.0.113.251"  # in no pool of this lab's tests: nobody may answer for it
NAME = "trust-web"
LAB_PY = ("env", f"PYTHONPATH={REPO / 'src'}:{REPO}", str(REPO / ".venv/bin/python"))
WATCH_S = 6.0  # how long each invariant is checked after the forged edit


def on_node(node: str) -> dict[str, object]:
    """An L2Advertisement spec part announcing from NODE only."""
    return {"nodeSelectors": [{"matchLabels": {"kubernetes.io/hostname": node}}]}


def arp_macs(kube: Kube, ip: str, wait: float = 0.4) -> list[str]:
    """MACs answering one ARP request for IP sent from the client."""
    res = kube.exec("client", *LAB_PY, "-m", "e2e.probes.arpprobe", ip, "--wait", str(wait), check=True)
    return [json.loads(line)["mac"] for line in res.stdout.splitlines() if line.strip()]


def announced(kube: Kube) -> dict | None:
    """The Service's ironlb.io/Announced condition."""
    conds = kube.get("service", NAME).get("status", {}).get("conditions") or []
    return next((c for c in conds if c["type"] == "ironlb.io/Announced"), None)


def always(check: object, seconds: float = WATCH_S) -> int:
    """Call CHECK (it asserts) again and again for SECONDS; return how many times it held."""
    deadline, n = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        check()  # type: ignore[operator]
        n += 1
    return n


@pytest.fixture(scope="module")
def vip(kube: Kube) -> Iterator[str]:
    """Pool A announced from node-1 only, pool B from node-2 only; a Service from A; its VIP, answered by node-1."""
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=60, what="every speaker joined")
    kube.apply(*pool_manifests(POOL_A, ["203.0.113.232/30"], advertisement=on_node("node-1")))
    kube.apply(*pool_manifests(POOL_B, ["203.0.113.236/30"], advertisement=on_node("node-2")))
    kube.deploy(NAME, replicas=3, nodes=list(NODES))
    kube.apply({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": NAME, "namespace": "default", "annotations": {"ironlb.io/address-pool": POOL_A}},
                "spec": {"type": "LoadBalancer", "selector": {"app": NAME}, "ipFamilies": ["IPv4"],
                         "ipFamilyPolicy": "SingleStack", "ports": [{"port": 80, "targetPort": 8080}]}})
    try:
        ip = wait_for(lambda: (kube.get("service", NAME).get("status", {}).get("loadBalancer", {})
                               .get("ingress") or [{}])[0].get("ip"), what="EXTERNAL-IP")
        assert ip.startswith("203.0.113.23")
        wait_for(lambda: arp_macs(kube, ip) == [lab.node_mac("node-1")], what="node-1 answering for the VIP")
        yield ip
    finally:
        kube.kubectl("delete", "service", NAME, "--wait=false", check=False)
        kube.undeploy(NAME)
        for pool in (POOL_A, POOL_B):
            kube.kubectl("delete", "l2advertisement,ipaddresspool", pool, "--ignore-not-found", check=False)


@pytest.fixture
def operator_frozen() -> Iterator[None]:
    """The operator stopped in its tracks (SIGSTOP), as when no replica holds the Lease; resumed after."""
    assert procs.signal_all("operator", signal.SIGSTOP), "the lab's operator is not running"
    try:
        yield
    finally:
        procs.signal_all("operator", signal.SIGCONT)


def test_a_forged_pool_annotation_does_not_move_the_announcement(kube: Kube, vip: str, operator_frozen: None) -> None:
    node1, node2 = lab.node_mac("node-1"), lab.node_mac("node-2")
    kube.kubectl("annotate", "service", NAME, f"ironlb.io/allocated-from-pool={POOL_B}", "--overwrite")
    assert kube.get("service", NAME)["metadata"]["annotations"]["ironlb.io/allocated-from-pool"] == POOL_B

    def only_node1() -> None:
        macs = arp_macs(kube, vip)
        assert node2 not in macs, f"node-2 (pool {POOL_B}'s node) answers for {vip}: {macs}"
        assert macs == [node1], macs

    assert always(only_node1) >= 5
    cond = announced(kube)
    assert cond is not None and cond["status"] == "True" and "node node-1" in cond["message"], cond


def test_an_address_in_no_pool_is_never_announced(kube: Kube, vip: str, operator_frozen: None) -> None:
    kube.kubectl("patch", "service", NAME, "--subresource=status", "--type=merge",
                 "-p", json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": OUTSIDE, "ipMode": "VIP"}]}}}))

    def nobody_answers() -> None:
        assert arp_macs(kube, OUTSIDE) == [], f"{OUTSIDE} (in no pool) is answered"

    assert always(nobody_answers) >= 5
    cond = wait_for(lambda: (c := announced(kube)) and c["status"] == "False" and c, what="Announced False")
    assert cond["reason"] == "NotInPool" and OUTSIDE in cond["message"], cond
    events = json.loads(kube.kubectl("get", "events", "-n", "default", "-o", "json", "--field-selector",
                                     f"involvedObject.name={NAME},reason=NotAnnounced").stdout)["items"]
    assert any(OUTSIDE in e["message"] and e["type"] == "Warning" for e in events), events
    counts = [kube.exec(n, "curl", "-s", "-m", "2", "http://127.0.0.1:7473/metrics", check=True).stdout for n in NODES]
    assert all("ironlb_speaker_unannounced_ips{reason=\"NotInPool\"}" in t and "reason=\"NotInPool\"} 0.0" not in t
               for t in counts)
