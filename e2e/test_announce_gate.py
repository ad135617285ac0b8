"""A new Service's IP answers only once the announcing node's kube-proxy can carry it
(docs/design.md, "Announcing after kube-proxy's sync"): from the client, new connections at 200 a second and ARP
every 50 ms from before the Service exists; every connection started after the IP first answered ARP is answered
by a pod.

Before the gate, the elected node answered ARP as soon as its speaker saw the Service and its endpoints, and its
kube-proxy rejected the VIP (ICMP host unreachable) until its next sync: the connections of that moment failed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from e2e.lab import lab
from e2e.test_hostile_lan import LAB_PY
from e2e.test_loadbalancer import service
from e2e.testkit.connections import parse
from e2e.testkit.testing import Kube, announced_pool, wait_for

pytestmark = pytest.mark.lab
NAME = "kp-gate"
VIP = "203.0.113.249"  # the pool's only address (in no other test's pool): known before the Service exists
NODES = ("node-1", "node-2", "node-3")
PERIOD_S, PROBE_S, RATE_HZ = 0.05, 10.0, 200.0


@pytest.fixture(scope="module", autouse=True)
def pool(kube: Kube) -> Iterator[None]:
    """A one-address pool announced from every node, once every speaker hears every peer."""
    yield from announced_pool(kube, NAME, [f"{VIP}/32"], NODES)


def in_client(*argv: str) -> subprocess.Popen[str]:
    """A lab probe started in the client namespace."""
    return subprocess.Popen(["ip", "netns", "exec", lab.namespace_of("client"), *LAB_PY, *argv],
                            stdout=subprocess.PIPE, text=True)


def first_arp_answer(lines: list[str]) -> float | None:
    """The monotonic time by which VIP had first answered ARP: the end of the first round that saw a reply."""
    rounds = [json.loads(line) for line in lines if line.strip()]
    return next((r["t"] + PERIOD_S for r in rounds if r["a"].get(VIP)), None)


def test_a_new_service_answers_no_connection_with_a_reject(kube: Kube) -> None:
    kube.deploy(NAME, replicas=len(NODES), nodes=list(NODES))  # endpoints first: the Service comes last
    arp = in_client("-m", "e2e.probes.arpsampler", VIP, "--period", str(PERIOD_S), "--seconds", str(PROBE_S + 2))
    conns = in_client("-m", "e2e.probes.connprobe", VIP, "--rate", str(RATE_HZ), "--long", "0",
                      "--duration", str(PROBE_S))
    try:
        kube.apply(service(NAME, pool=NAME))
        wait_for(lambda: (kube.get("service", NAME).get("status", {}).get("loadBalancer", {})
                          .get("ingress") or [{}])[0].get("ip") == VIP, what=f"{NAME} assigned {VIP}")
        arp_out, _ = arp.communicate(timeout=PROBE_S + 30)
        conn_out, _ = conns.communicate(timeout=PROBE_S + 30)
    finally:
        for proc in (arp, conns):
            if proc.poll() is None:
                proc.kill()
        kube.kubectl("delete", "service", NAME, "--ignore-not-found", "--wait=false")
        kube.undeploy(NAME)
    answered_at = first_arp_answer(arp_out.splitlines())
    assert answered_at is not None, f"{VIP} never answered ARP within {PROBE_S} s"
    after = [a for a in parse(conn_out.splitlines()).attempts if a.start >= answered_at]
    assert len(after) >= RATE_HZ, f"too few connections after {VIP} first answered to tell: {len(after)}"
    failed = [a for a in after if not a.ok]
    print(f"{len(after)} connections after the first ARP answer, {len(failed)} failed")
    assert failed == [], f"connections failed after {VIP} first answered ARP: {failed[:5]}"
