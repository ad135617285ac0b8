"""MetalLB 0.16 parity and the upstream conventions on the lightweight lab: an L2Advertisement's serviceSelectors
decide which Services it announces, and the cleanup finalizer holds a Service until no node answers for its IP
(the ARP probe from the client tells)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from e2e.lab import lab
from e2e.test_loadbalancer import NODES, announced, announcer, probe, service, settled_election, vip_of
from e2e.testkit.testing import Kube, pool_manifests, wait_for
from ironlb.core.election import elect

pytestmark = pytest.mark.lab
POOL = "e2e-selected"
FIN_POOL = "e2e-finalizer"


@pytest.fixture
def selected_pool(kube: Kube) -> Iterator[None]:
    """A pool whose only L2Advertisement announces the Services labelled expose=l2 alone."""
    settled_election(kube)
    kube.apply(*pool_manifests(POOL, ["203.0.113.128/28"],
                               advertisement={"serviceSelectors": [{"matchLabels": {"expose": "l2"}}]}))
    yield
    kube.kubectl("delete", "l2advertisement", POOL, "--ignore-not-found")
    kube.kubectl("delete", "ipaddresspool", POOL, "--ignore-not-found")


def labelled(name: str, **labels: str) -> dict:
    """A LoadBalancer Service of POOL with LABELS."""
    svc = service(name, pool=POOL, app="sel")
    svc["metadata"]["labels"] = labels
    return svc


def condition_reason(kube: Kube, name: str) -> str | None:
    """The reason of the Service's ironlb.io/Announced condition (None until written)."""
    cond = announced(kube, name)
    return cond["reason"] if cond else None


def test_only_the_services_an_advertisements_serviceselectors_match_are_announced(kube: Kube,
                                                                                  selected_pool: None) -> None:
    kube.deploy("sel", replicas=3, nodes=list(NODES))
    kube.apply(labelled("sel-in", expose="l2"), labelled("sel-out", expose="bgp"))
    try:
        vip_in, vip_out = vip_of(kube, "sel-in"), vip_of(kube, "sel-out")  # both get an IP: selection is not allocation
        wait_for(lambda: condition_reason(kube, "sel-out") == "NoMatchingL2Advertisement", timeout=45,
                 what="sel-out said not announced")
        wait_for(lambda: condition_reason(kube, "sel-in") == "Announcing", timeout=45, what="sel-in announced")
        replies = wait_for(lambda: probe(kube, vip_in), what="ARP reply for the matching Service")
        assert [r["mac"] for r in replies] == [lab.node_mac(elect(vip_in, NODES))]
        assert probe(kube, vip_out, wait=1.0) == []  # the unmatched Service: no node answers
        # Labelled to match, it is announced; the selector edited away from it, it is withdrawn.
        kube.kubectl("label", "service", "sel-out", "expose=l2", "--overwrite")
        wait_for(lambda: probe(kube, vip_out), what="ARP reply once the Service matches")
        kube.kubectl("patch", "l2advertisement", POOL, "--type=merge", "-p",
                     '{"spec": {"serviceSelectors": [{"matchLabels": {"expose": "none"}}]}}')
        wait_for(lambda: not probe(kube, vip_in, wait=0.5) and not probe(kube, vip_out, wait=0.5),
                 what="both withdrawn once the advertisement matches neither")
    finally:
        kube.kubectl("delete", "service", "sel-in", "sel-out", "--wait=false")
        kube.undeploy("sel")


FINALIZER = "service.kubernetes.io/load-balancer-cleanup"


def finalizers(kube: Kube, name: str) -> list[str] | None:
    """The Service's finalizers (None once it is gone)."""
    res = kube.kubectl("get", "service", name, "-o", "json", check=False)
    return None if res.returncode else json.loads(res.stdout)["metadata"].get("finalizers") or []


def speaker_control_pid(node: str) -> int:
    """The PID of NODE's speaker control plane (`-m ironlb.speaker`; its fast plane is another process)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[1:3] == [b"-m", b"ironlb.speaker"] and b"--node" in argv and argv[argv.index(b"--node") + 1] == \
                node.encode():
            return int(entry.name)
    raise AssertionError(f"no speaker control plane found for {node}")


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    """PID stopped (SIGSTOP) for the block, then continued: a speaker whose control plane lags."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_the_cleanup_finalizer_goes_only_once_no_speaker_answers_and_the_ip_is_reusable(kube: Kube) -> None:
    """The upstream spec's finalizer steps (added; gone on a type change; back), and a deletion that waits for the
    announcing speaker: while its control plane is stopped it still answers ARP and the Service stays; once it
    runs again it withdraws, says so, and the Service goes. No ARP answer after that; the IP serves a new Service."""
    settled_election(kube)
    kube.apply(*pool_manifests(FIN_POOL, ["203.0.113.176/29"]))
    kube.deploy("fin", replicas=3, nodes=list(NODES))
    kube.apply(service("fin", pool=FIN_POOL))
    try:
        vip = vip_of(kube, "fin")
        wait_for(lambda: finalizers(kube, "fin") == [FINALIZER], what="the cleanup finalizer added")
        kube.kubectl("patch", "service", "fin", "-p", '{"spec": {"type": "ClusterIP"}}')
        wait_for(lambda: finalizers(kube, "fin") == [], timeout=30, what="the finalizer gone with the type change")
        wait_for(lambda: not probe(kube, vip, wait=0.5), what="no answer once it is a ClusterIP Service")
        kube.kubectl("patch", "service", "fin", "-p", '{"spec": {"type": "LoadBalancer"}}')
        wait_for(lambda: finalizers(kube, "fin") == [FINALIZER], timeout=30, what="the finalizer back")
        vip = vip_of(kube, "fin")
        node = announcer(kube, "fin")
        assert [r["mac"] for r in wait_for(lambda: probe(kube, vip), what="ARP reply")] == [lab.node_mac(node)]

        with frozen(speaker_control_pid(node)):
            kube.kubectl("delete", "service", "fin", "--wait=false")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                assert finalizers(kube, "fin") == [FINALIZER], "went while its announcer had not withdrawn"
                time.sleep(0.5)
            assert [r["mac"] for r in probe(kube, vip)] == [lab.node_mac(node)]  # the fast plane still answers
        samples: list[tuple[bool, bool]] = []  # (Service still there, ARP answered), in time order
        while time.monotonic() < deadline + 30:
            there = finalizers(kube, "fin") is not None
            samples.append((there, bool(probe(kube, vip, wait=0.3))))
            if not there:
                break
        assert samples[-1] == (False, False), samples  # gone, and nobody answers
        assert not any(answered for there, answered in samples if not there)
        assert probe(kube, vip, wait=1.0) == []
        # Released: a new Service asking for that IP gets it, and it answers again.
        again = service("fin2", pool=FIN_POOL, app="fin")
        again["metadata"]["annotations"]["ironlb.io/loadBalancerIPs"] = vip
        kube.apply(again)
        assert vip_of(kube, "fin2") == vip
        wait_for(lambda: probe(kube, vip), what="the IP answering for the new Service")
    finally:
        kube.kubectl("delete", "service", "fin", "fin2", "--ignore-not-found", "--wait=false")
        kube.undeploy("fin")
        kube.kubectl("delete", "l2advertisement", FIN_POOL, "--ignore-not-found")
        kube.kubectl("delete", "ipaddresspool", FIN_POOL, "--ignore-not-found")
