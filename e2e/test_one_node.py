"""A one-node cluster whose only node carries node.kubernetes.io/exclude-from-external-load-balancers (what
kind, Talos and single-node installers do): nothing is announced by default, and everything with the speaker's
--ignore-exclude-lb (the chart's speaker.ignoreExcludeLB sets IRONLB_IGNORE_EXCLUDE_LB, which the lab's speaker
is restarted with here). Lightweight lab, `up --nodes 1`; the three-node lab is brought back afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e.lab import ironlb_procs, lab
from e2e.lab.state import Status, load_state
from e2e.test_loadbalancer import announced, probe, service, vip_of
from e2e.testkit.testing import Kube, ensure_lab, pool_manifests, speaker_hears_all, wait_for

pytestmark = pytest.mark.lab
NODE = "node-1"
POOL = "e2e-one-node"
EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers"


@pytest.fixture(scope="module")
def one_node() -> Iterator[Kube]:
    """The lab with one node (whichever lab ran before is restored after, as the session expects it)."""
    before = load_state()
    restore = before.status == Status.READY and not before.kubelet and before.nodes != 1
    kube, _ = ensure_lab(nodes=1, ipv6=False)
    yield kube
    if restore:
        ensure_lab(nodes=before.nodes, ipv6=before.ipv6)
    else:
        lab.down()


def reason(kube: Kube, name: str) -> str | None:
    cond = announced(kube, name)
    return cond["reason"] if cond else None


def test_a_lone_excluded_node_announces_only_when_the_speaker_ignores_the_label(one_node: Kube) -> None:
    kube = one_node
    wait_for(lambda: speaker_hears_all(kube, NODE), timeout=60, what="the speaker joined")
    kube.kubectl("label", "node", NODE, f"{EXCLUDE}=", "--overwrite")
    kube.apply(*pool_manifests(POOL, ["203.0.113.160/28"]))
    kube.deploy("lone", replicas=1, nodes=[NODE])
    kube.apply(service("lone", pool=POOL))
    try:
        vip = vip_of(kube, "lone")
        wait_for(lambda: reason(kube, "lone") == "NoEligibleNode", timeout=45, what="not announced: excluded")
        assert probe(kube, vip, wait=1.0) == []
        ironlb_procs.restart("speaker", NODE, env={"IRONLB_IGNORE_EXCLUDE_LB": "true"})
        wait_for(lambda: reason(kube, "lone") == "Announcing", timeout=60, what="announced once the label is ignored")
        assert [r["mac"] for r in wait_for(lambda: probe(kube, vip), what="ARP reply")] == [lab.node_mac(NODE)]
        assert wait_for(lambda: kube.curl("client", f"http://{vip}/"), what="curl VIP").startswith("lone")
    finally:
        ironlb_procs.restart("speaker", NODE)
        kube.kubectl("delete", "service", "lone", "--wait=false")
        kube.undeploy("lone")
        kube.kubectl("label", "node", NODE, f"{EXCLUDE}-")
        kube.kubectl("delete", "l2advertisement", POOL, "--ignore-not-found")
        kube.kubectl("delete", "ipaddresspool", POOL, "--ignore-not-found")
