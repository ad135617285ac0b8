"""`ironlb doctor` on the lab's real API server: one healthy chain and one broken chain per link."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.lab import ironlb_procs, procs
from e2e.testkit.testing import Kube, pool_manifest, pool_manifests, speaker_hears_all, wait_for
from ironlb.api.annotations import EVENT_REASON
from ironlb.api.reasons import AllocationReason, EventReason
from ironlb.cli.doctor.chain import ALLOCATION_FIXES

pytestmark = pytest.mark.lab
BIN = Path(sys.executable).parent
ANNOUNCED = "ironlb.io/Announced"
POOLS = {  # name -> (addresses, L2Advertisement spec beyond the pool, or None for no advertisement)
    "doctor": (["198.51.100.16/28"], {}),
    "doctor-full": (["198.51.100.40/32"], {}),
    "doctor-noad": (["198.51.100.48/30"], None),
    "doctor-nonode": (["198.51.100.52/30"], {"nodeSelectors": [{"matchLabels": {"ironlb.io/doctor": "none"}}]}),
    "doctor-one": (["198.51.100.56/30"], {"nodeSelectors": [{"matchLabels": {"kubernetes.io/hostname": "node-3"}}]}),
}
APPS = ("doc-web", "doc-one")


def service(name: str, pool: str, app: str, **spec: Any) -> dict[str, Any]:
    """A LoadBalancer Service from POOL selecting app=APP."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "annotations": {"ironlb.io/address-pool": pool}},
            "spec": {"type": "LoadBalancer", "selector": {"app": app},
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}], **spec}}


SERVICES = (
    service("doc-ok", "doctor", "doc-web"),
    service("doc-class", "doctor", "doc-web", loadBalancerClass="example.com/other"),
    service("doc-full-a", "doctor-full", "doc-web"),
    service("doc-noad", "doctor-noad", "doc-web"),
    service("doc-nonode", "doctor-nonode", "doc-web"),
    service("doc-noep", "doctor", "doc-nobody"),
    service("doc-one", "doctor-one", "doc-one"),
)


def doctor(kube: Kube, name: str, *args: str, plugin: bool = False) -> tuple[int, dict[str, Any]]:
    """Run `ironlb doctor NAME -o json` (or `kubectl ironlb doctor`, as a plugin on PATH); exit code and JSON."""
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig), "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    argv = [str(kube.bin_dir / "kubectl"), "ironlb"] if plugin else [str(BIN / "ironlb")]
    res = subprocess.run([*argv, "doctor", "-n", "default", name, "-o", "json", *args], capture_output=True,
                         text=True, timeout=60, env=env)
    assert res.stdout, res.stderr
    return res.returncode, json.loads(res.stdout)


def condition(kube: Kube, name: str) -> dict[str, Any] | None:
    """The Service's Announced condition."""
    conds = kube.get("service", name).get("status", {}).get("conditions") or []
    return next((c for c in conds if c["type"] == ANNOUNCED), None)


@pytest.fixture(scope="module", autouse=True)
def chains(kube: Kube) -> Iterator[None]:
    """Every pool, advertisement, workload and Service of the chains, created at once and removed after."""
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in kube.nodes), timeout=60,
             what="every speaker in the election")
    manifests: list[dict[str, Any]] = []
    for name, (addresses, ad) in POOLS.items():
        manifests += pool_manifests(name, addresses, ad) if ad is not None else [
            pool_manifest(name, addresses, autoAssign=False)]
    kube.apply(*manifests)
    for app in APPS:
        kube.deploy(app, replicas=3)
    kube.apply(*SERVICES)
    # doc-full-a holds the pool's one address before doc-full-b asks for one.
    wait_for(lambda: kube.get("service", "doc-full-a").get("status", {}).get("loadBalancer", {}).get("ingress"),
             what="doc-full-a's IP")
    kube.apply(service("doc-full-b", "doctor-full", "doc-web"))
    yield
    kube.kubectl("delete", "service", *(s["metadata"]["name"] for s in SERVICES), "doc-full-b",
                 "--ignore-not-found", "--wait=false")
    for app in APPS:
        kube.undeploy(app)
    for name, (_, ad) in POOLS.items():
        if ad is not None:
            kube.kubectl("delete", "l2advertisement", name, "--ignore-not-found")
        kube.kubectl("delete", "ipaddresspool", name, "--ignore-not-found")


def settled(kube: Kube, name: str, code: int) -> dict[str, Any]:
    """Doctor's report once it exits with CODE (objects settle within seconds); fails with the last report."""
    last: list[Any] = []

    def probe() -> dict[str, Any] | None:
        rc, report = doctor(kube, name)
        last[:] = [rc, report]
        return report if rc == code else None

    try:
        return wait_for(probe, timeout=30, interval=0.5, what=f"doctor {name} to exit {code}")
    except AssertionError:
        raise AssertionError(f"doctor {name}: exit {last[0]}, report {json.dumps(last[1], indent=1)}") from None


def link(report: dict[str, Any], number: int) -> dict[str, Any]:
    """One link of a report."""
    return report["links"][number - 1]


def test_healthy_chain_as_a_kubectl_plugin(kube: Kube) -> None:
    report = settled(kube, "doc-ok", 0)
    code, plugin_report = doctor(kube, "doc-ok", plugin=True)  # kubectl finds kubectl-ironlb on PATH
    assert code == 0 and plugin_report["healthy"] and plugin_report["failedLink"] is None
    assert [link["status"] for link in report["links"]] == ["ok"] * 7 + ["not-checked"], json.dumps(report, indent=1)
    vip = report["ips"][0]
    node = re.search(r"node-\d", condition(kube, "doc-ok")["message"]).group(0)  # type: ignore[index]
    assert f"on {node}" in link(report, 5)["summary"] and "speaker alive" in link(report, 5)["summary"]
    assert f"{vip} in {node}'s table" in link(report, 6)["summary"]
    assert "3 ready" in link(report, 7)["summary"]
    assert "kube-proxy's rules" in report["notChecked"][0]
    assert wait_for(lambda: kube.curl("client", f"http://{vip}/"), what="traffic to the healthy Service")


@pytest.mark.parametrize(("name", "number", "words"), [
    ("doc-class", 1, "example.com/other"),
    ("doc-full-b", 2, "no free"),
    ("doc-noad", 3, "no L2Advertisement covers pool doctor-noad"),
    ("doc-nonode", 4, "no node may announce it"),
    ("doc-noep", 7, "no pod matches selector app=doc-nobody"),
])
def test_broken_chain_names_its_link(kube: Kube, name: str, number: int, words: str) -> None:
    report = settled(kube, name, 10 + number)
    assert report["failedLink"] == number and not report["healthy"]
    broken = link(report, number)
    assert broken["status"] == "failed" and words in broken["summary"] and broken["fix"]
    assert all(link(report, n)["status"] in ("ok", "blocked", "not-checked") for n in range(1, number))
    assert all(link(report, n)["status"] == "not-reached" for n in range(number + 1, 9))


def test_a_full_pool_is_told_by_the_events_reason_not_its_words(kube: Kube) -> None:
    """The operator's AllocationFailed Event carries the allocator's reason; doctor gives that reason's fix."""
    report = settled(kube, "doc-full-b", 12)
    assert link(report, 2)["fix"] == ALLOCATION_FIXES[AllocationReason.POOL_EXHAUSTED]
    assert f"({AllocationReason.POOL_EXHAUSTED.value})" in link(report, 2)["details"][0]
    selector = f"involvedObject.name=doc-full-b,reason={EventReason.ALLOCATION_FAILED.value}"
    events = json.loads(kube.kubectl("get", "events", "-n", "default", "-o", "json", "--field-selector",
                                     selector).stdout)["items"]
    reasons = {(e["metadata"].get("annotations") or {}).get(EVENT_REASON) for e in events}
    assert reasons == {AllocationReason.POOL_EXHAUSTED.value}, events


def test_no_eligible_node_gives_each_nodes_reason(kube: Kube) -> None:
    report = settled(kube, "doc-nonode", 14)
    assert sorted(link(report, 4)["details"]) == [
        f"{n}: not selected by the L2Advertisement's nodeSelectors" for n in kube.nodes]


def test_speaker_down_on_the_only_eligible_node(kube: Kube) -> None:
    wait_for(lambda: (c := condition(kube, "doc-one")) and c["status"] == "True" and "node-3" in c["message"],
             what="doc-one announced from node-3")
    assert settled(kube, "doc-one", 0)["healthy"]
    procs.stop("speaker-node-3")
    try:
        report = settled(kube, "doc-one", 15)
        assert "speaker down" in link(report, 5)["summary"] and "node-3" in link(report, 5)["fix"]
        assert link(report, 4)["status"] == "ok"  # its Node is Ready: eligible by the API, silent on the wire
    finally:
        ironlb_procs.start_speaker("node-3")
        wait_for(lambda: all(speaker_hears_all(kube, n) for n in kube.nodes), timeout=60,
                 what="node-3's speaker back in the election")
    assert settled(kube, "doc-one", 0)["healthy"]
