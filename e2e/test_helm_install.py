"""`helm install` into the lab's API server, then IronLB running with the chart's own ServiceAccounts:
the LoadBalancer path works (the RBAC is sufficient) and a request outside the rules is refused.

Each speaker's token is bound to a Pod object on its node, as the kubelet's is, so the chart's admission
policies see its node: a speaker changes only IronLB's conditions on the Services IronLB serves (never another
controller's ingress, annotations or conditions) and only its own Pod's HearsPeers condition."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.lab import ironlb_procs
from e2e.lab.config import LAB_DIR, REPO
from e2e.lab.config import node as lab_node
from e2e.testkit import identity
from e2e.testkit.testing import Kube, pool_manifests, wait_for
from ironlb.api.bgp_status import NodeBGPStatus
from ironlb.api.constants import BGPNODESTATUSES, GROUP, VERSION
from ironlb.common import kubeapi

pytestmark = pytest.mark.lab
NS = "ironlb-system"


@pytest.fixture(scope="module")
def chart_credentials(kube: Kube) -> Iterator[tuple[Path, Path]]:
    """Install the chart; yield kubeconfigs of its operator and (node-1's) speaker ServiceAccounts. Each speaker
    runs with a token bound to its own Pod object, as the kubelet's projected token is."""
    kube.kubectl("create", "namespace", NS, check=False)
    kube.helm("upgrade", "--install", "ironlb", str(REPO / "charts" / "ironlb"), "--namespace", NS,
              "--wait=false")
    operator = identity.token_kubeconfig("ironlb-operator", NS, LAB_DIR / "chart-operator.kubeconfig")
    speakers = identity.speaker_kubeconfigs("ironlb-speaker", NS)
    ironlb_procs.start_ironlb_as(operator, speakers, NS, "ironlb-heartbeat",
                        pods={n: identity.speaker_pod("ironlb-speaker", NS, n) for n in speakers})
    yield operator, speakers["node-1"]
    ironlb_procs.stop_ironlb()
    ironlb_procs.start_ironlb()
    # No hooks: the chart's pre-delete hook is a Job, and the lightweight lab has no kubelet to run it (the harness
    # plays the chart's workloads); the real-node lab runs it (e2e/test_real_nodes.py).
    kube.helm("uninstall", "ironlb", "--namespace", NS, "--no-hooks", check=False)
    # What the operator created is owned by its Deployment: the garbage collector takes it too.
    wait_for(lambda: not kube.kubectl("get", "secret,lease", "-n", NS, "-o", "name", check=False).stdout.strip(),
             timeout=30, what="the operator's Secret and Lease to go with the release")
    kube.kubectl("delete", "pods", "-n", NS, "-l", "ironlb.io/lab=speaker-identity", "--wait=false", check=False)


def as_user(kube: Kube, kubeconfig: Path, *args: str) -> tuple[int, str]:
    """kubectl with another identity: (exit code, stderr)."""
    res = subprocess.run([str(kube.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
                         capture_output=True, text=True, timeout=30)
    return res.returncode, res.stderr


def test_chart_installs_what_it_declares(kube: Kube, chart_credentials: tuple[Path, Path]) -> None:
    status = kube.helm("status", "ironlb", "--namespace", NS).stdout
    assert "STATUS: deployed" in status
    for kind, name in (("deployment", "ironlb-operator"), ("daemonset", "ironlb-speaker"),
                       ("serviceaccount", "ironlb-speaker")):
        kube.kubectl("get", kind, name, "-n", NS)
    # The heartbeat key is made by the operator at runtime (a rendered one would change on every
    # `helm template`), owned by the operator's Deployment.
    secret = wait_for(lambda: json.loads(kube.kubectl("get", "secret", "ironlb-heartbeat", "-n", NS, "-o", "json",
                                                      check=False).stdout or "null"), what="the heartbeat Secret")
    assert len(base64.b64decode(secret["data"]["key"])) >= 64
    owners = [(o["kind"], o["name"]) for o in secret["metadata"]["ownerReferences"]]
    assert owners == [("Deployment", "ironlb-operator")]
    kube.kubectl("get", "crd", "ipaddresspools.ironlb.io", "l2advertisements.ironlb.io")
    # The admission policies' CEL type-checks against the API server's schemas: no expression warning.
    for policy in ("ironlb-speaker-service-status", "ironlb-speaker-pod-status"):
        status = wait_for(lambda p=policy: (s := kube.get("validatingadmissionpolicy", p, None).get("status") or {})
                          and "typeChecking" in s and s, what=f"{policy} type-checked")
        assert not status["typeChecking"].get("expressionWarnings"), status


def test_metrics_are_reviewed_with_the_chart_rbac(kube: Kube, chart_credentials: tuple[Path, Path]) -> None:
    """A speaker with the chart's ServiceAccount and listeners asks the API server about each token: a reader bound
    to the chart's metrics-reader ClusterRole gets the page, anyone else 401 (unknown) or 403 (not allowed)."""
    _, speaker = chart_credentials
    ip = lab_node(1).ipv4
    ironlb_procs.start_speaker_as("node-1", speaker, NS, "ironlb-heartbeat",
                         {"IRONLB_METRICS_HOST": ip, "IRONLB_METRICS_AUTH": "kubernetes"})
    wait_for(lambda: kube.exec("node-1", "curl", "-sf", "-m", "1", "http://127.0.0.1:7474/readyz").returncode == 0,
             timeout=60, what="node-1's speaker ready")
    for name in ("e2e-prometheus", "e2e-stranger"):
        kube.kubectl("create", "serviceaccount", name, "-n", NS, check=False)
    kube.kubectl("create", "clusterrolebinding", "e2e-prometheus", "--clusterrole=ironlb-metrics-reader",
                 f"--serviceaccount={NS}:e2e-prometheus", check=False)
    try:
        def status(token: str | None) -> str:
            auth = ["-H", f"Authorization: Bearer {token}"] if token else []
            return kube.exec("client", "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", *auth,
                             f"http://{ip}:7473/metrics").stdout.strip()

        token = {n: kube.kubectl("create", "token", n, "-n", NS).stdout.strip()
                 for n in ("e2e-prometheus", "e2e-stranger")}
        assert status(token["e2e-prometheus"]) == "200"
        assert (status(None), status("forged"), status(token["e2e-stranger"])) == ("401", "401", "403")
    finally:
        kube.kubectl("delete", "clusterrolebinding", "e2e-prometheus", "--ignore-not-found")
        kube.kubectl("delete", "serviceaccount", "e2e-prometheus", "e2e-stranger", "-n", NS, "--ignore-not-found")
        ironlb_procs.start_speaker_as("node-1", speaker, NS, "ironlb-heartbeat", {"POD_NAME": "ironlb-speaker-node-1"})


def doctor(kube: Kube, kubeconfig: Path, name: str) -> dict[str, Any]:
    """`ironlb doctor NAME -o json` run with KUBECONFIG: its report."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    res = subprocess.run([str(Path(sys.executable).parent / "ironlb"), "doctor", "-n", "default", name, "-o", "json"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert res.stdout, res.stderr
    report: dict[str, Any] = json.loads(res.stdout)
    return report


@pytest.fixture
def doctor_service(kube: Kube, chart_credentials: tuple[Path, Path]) -> Iterator[str]:
    """A Service announced by node-1 only, whose speaker runs as the chart runs it: its /metrics on the address the
    API server reaches the node by (the chart's $(HOST_IP)), behind the chart's default auth (a reviewed token)."""
    _, speaker = chart_credentials
    ironlb_procs.start_speaker_as("node-1", speaker, NS, "ironlb-heartbeat",
                         {"IRONLB_METRICS_HOST": lab_node(1).mgmt_ipv4, "IRONLB_METRICS_AUTH": "kubernetes",
                          "POD_NAME": "ironlb-speaker-node-1"})
    wait_for(lambda: kube.exec("node-1", "curl", "-sf", "-m", "1", "http://127.0.0.1:7474/readyz").returncode == 0,
             timeout=60, what="node-1's speaker ready")
    kube.apply(*pool_manifests("helm-doctor", ["203.0.113.124/30"],
                               {"nodeSelectors": [{"matchLabels": {"kubernetes.io/hostname": "node-1"}}]}))
    kube.deploy("helm-doc", replicas=1, nodes=["node-1"])
    kube.apply({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "helm-doc", "namespace": "default",
                             "annotations": {"ironlb.io/address-pool": "helm-doctor"}},
                "spec": {"type": "LoadBalancer", "selector": {"app": "helm-doc"},
                         "ports": [{"port": 80, "targetPort": 8080}]}})
    try:
        wait_for(lambda: next((c for c in kube.get("service", "helm-doc").get("status", {}).get("conditions") or []
                               if c["type"] == "ironlb.io/Announced" and c["status"] == "True"
                               and "from node node-1 " in c["message"]), None), timeout=60,
                 what="helm-doc announced from node-1")
        yield "helm-doc"
    finally:
        kube.kubectl("delete", "service", "helm-doc", "--wait=false")
        kube.undeploy("helm-doc")
        kube.kubectl("delete", "l2advertisement,ipaddresspool", "helm-doctor", "--ignore-not-found")
        ironlb_procs.start_speaker_as("node-1", speaker, NS, "ironlb-heartbeat", {"POD_NAME": "ironlb-speaker-node-1"})


def test_doctor_reads_speaker_metrics_through_the_proxy_by_default(kube: Kube, doctor_service: str) -> None:
    """The API server's proxy drops the admin's token: doctor sends a token of the chart's ironlb-doctor
    ServiceAccount in the header the proxy passes on, and reads the announcing speaker's table."""
    def read() -> dict[str, Any] | None:
        report = doctor(kube, kube.kubeconfig, doctor_service)
        return report if report["links"][5]["status"] == "ok" else None

    try:
        report = wait_for(read, timeout=30, interval=1, what="doctor to read node-1's speaker table")
    except AssertionError:
        raise AssertionError(json.dumps(doctor(kube, kube.kubeconfig, doctor_service), indent=1)) from None
    assert report["links"][5]["summary"] == "203.0.113.124 in node-1's table on eth0"
    assert "on node-1" in report["links"][4]["summary"] and "speaker alive" in report["links"][4]["summary"]
    assert report["findings"] == []


def test_doctor_without_a_token_says_why_and_does_not_call_the_speaker_down(kube: Kube, doctor_service: str) -> None:
    """A user who may read everything doctor reads but not create tokens for ironlb-doctor: the speaker refused
    doctor, and doctor says why (a finding with its reason and the fix) instead of "speaker down"."""
    kube.kubectl("create", "serviceaccount", "e2e-viewer", "-n", NS, check=False)
    kube.kubectl("create", "clusterrole", "e2e-viewer", "--verb=get,list",
                 "--resource=services,nodes,events,pods,serviceaccounts,endpointslices.discovery.k8s.io,"
                 "ipaddresspools.ironlb.io,l2advertisements.ironlb.io,nodes/proxy,pods/proxy", check=False)
    kube.kubectl("create", "clusterrolebinding", "e2e-viewer", "--clusterrole=e2e-viewer",
                 f"--serviceaccount={NS}:e2e-viewer", check=False)
    try:
        viewer = identity.token_kubeconfig("e2e-viewer", NS, LAB_DIR / "e2e-viewer.kubeconfig")
        report = doctor(kube, viewer, doctor_service)
        assert report["links"][4]["status"] == "ok" and "speaker down" not in report["links"][4]["summary"], report
        assert report["links"][5]["status"] == "not-checked"
        assert [(f["reason"], f["token"]) for f in report["findings"]] == [("metrics-need-token", "token-forbidden")]
        assert "node-1: no-token" in report["findings"][0]["summary"]
        assert "--resource=serviceaccounts/token --resource-name=ironlb-doctor" in report["findings"][0]["fix"]
    finally:
        kube.kubectl("delete", "clusterrolebinding,clusterrole", "e2e-viewer", "--ignore-not-found")
        kube.kubectl("delete", "serviceaccount", "e2e-viewer", "-n", NS, "--ignore-not-found")


def test_loadbalancer_path_works_with_chart_rbac(kube: Kube, chart_credentials: tuple[Path, Path]) -> None:
    kube.apply(*pool_manifests("helm-pool", ["203.0.113.120/30"]))
    kube.deploy("helm-web", replicas=2, nodes=["node-1", "node-2"])
    kube.apply({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "helm-web", "namespace": "default",
                             "annotations": {"ironlb.io/address-pool": "helm-pool"}},
                "spec": {"type": "LoadBalancer", "selector": {"app": "helm-web"},
                         "ports": [{"port": 80, "targetPort": 8080}]}})
    try:
        vip = wait_for(lambda: (kube.get("service", "helm-web").get("status", {}).get("loadBalancer", {})
                                .get("ingress") or [{}])[0].get("ip"), timeout=40, what="EXTERNAL-IP")
        assert vip == "203.0.113.120"
        body = wait_for(lambda: kube.curl("client", f"http://{vip}/"), timeout=30, what="curl VIP")
        assert body.startswith("helm-web")
        # The speaker says False (no ready endpoints) until the Pods are ready, and True at its next write after:
        # the write path works with the chart's RBAC once it says True.
        cond = wait_for(lambda: next((c for c in kube.get("service", "helm-web").get("status", {}).get("conditions")
                                      or [] if c["type"] == "ironlb.io/Announced" and c["status"] == "True"), None),
                        timeout=30, what="Announced True")
        assert "node-" in cond["message"], cond
        lease = kube.get("lease", "ironlb-operator", NS)
        assert lease["spec"]["holderIdentity"] == "chart-operator"
        pool = wait_for(lambda: (kube.get("ipaddresspool", "helm-pool", None).get("status") or {})
                        .get("assignedIPv4"), what="pool status written")
        assert pool == 1
        # Every speaker says on its own Pod that it hears peers, through the admission policy (Pod in its token).
        wait_for(lambda: all(hears_peers(kube.get("pod", f"ironlb-speaker-{n}", NS)) == "True"
                             for n in ("node-1", "node-2", "node-3")), what="each speaker's HearsPeers condition")
    finally:
        kube.kubectl("delete", "service", "helm-web", "--wait=false")
        kube.undeploy("helm-web")
        kube.kubectl("delete", "l2advertisement,ipaddresspool", "helm-pool", "--ignore-not-found")


@pytest.mark.parametrize("who, args", [
    ("operator", ("delete", "service", "kubernetes", "-n", "default", "--dry-run=server")),
    ("operator", ("get", "secrets", "-n", NS)),
    ("operator", ("patch", "service", "kubernetes", "-n", "default", "-p", '{"metadata":{"labels":{"x":"y"}}}')),
    ("operator", ("create", "namespace", "not-allowed", "--dry-run=server")),
    ("speaker", ("get", "secret", "some-other-secret", "-n", NS)),
    ("speaker", ("patch", "service", "kubernetes", "-n", "default", "-p", '{"metadata":{"labels":{"x":"y"}}}')),
    ("speaker", ("delete", "ipaddresspool", "any", "--dry-run=server")),
    ("speaker", ("create", "token", "ironlb-operator", "-n", NS)),
])
def test_requests_outside_the_rules_are_refused(kube: Kube, chart_credentials: tuple[Path, Path], who: str,
                                                args: tuple[str, ...]) -> None:
    operator, speaker = chart_credentials
    code, err = as_user(kube, operator if who == "operator" else speaker, *args)
    assert code != 0
    assert "forbidden" in err.lower(), err


@pytest.fixture(scope="module")
def services(kube: Kube, chart_credentials: tuple[Path, Path]) -> Iterator[dict[str, str]]:
    """Services owned by others: one IronLB serves (no class), one of another controller's class, a ClusterIP."""
    made = {"ours": {"type": "LoadBalancer"},
            "theirs": {"type": "LoadBalancer", "loadBalancerClass": "example.com/other-lb"},
            "plain": {"type": "ClusterIP"}}
    for name, spec in made.items():
        kube.apply({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": f"vap-{name}", "namespace": "default"},
                    "spec": {**spec, "selector": {"app": "none"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    # Another controller's ingress (external-dns publishes it): the speaker must not be able to rewrite it.
    kube.kubectl("patch", "service", "vap-theirs", "--subresource=status", "--type=merge", "-p",
                 json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.9"}]}}}))
    yield {name: f"vap-{name}" for name in made}
    for name in made:
        kube.kubectl("delete", "service", f"vap-{name}", "--wait=false", check=False)


def condition(ctype: str, status: str = "True") -> dict[str, Any]:
    """A status patch setting one condition."""
    return {"status": {"conditions": [{"type": ctype, "status": status, "reason": "Test", "message": "m",
                                       "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}


def status_patch(kubeconfig: Path, service: str, body: dict[str, Any]) -> str | None:
    """Patch a Service's status with the speaker's own client as KUBECONFIG's identity: None, or the refusal."""
    with kubeapi.connect(str(kubeconfig)) as api:
        try:
            api.patch(kubeapi.SERVICES, service, body, "default", subresource="status", timeout=(5.0, 10.0))
        except kubeapi.ApiError as exc:
            return f"{exc.status} {exc.message}"
    return None


FORGED_INGRESS = {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.254"}]}}}


@pytest.mark.parametrize("service, body", [
    ("theirs", FORGED_INGRESS),
    ("ours", FORGED_INGRESS),
    ("theirs", condition("ironlb.io/Announced")),
    ("plain", condition("ironlb.io/Announced")),
    ("ours", condition("example.com/Ready")),
    ("ours", condition("ironlb.io/Allocated")),  # the operator's
    ("ours", {"metadata": {"annotations": {"ironlb.io/allocated-from-pool": "other"}}}),
    ("ours", {"metadata": {"labels": {"x": "y"}}}),
])
def test_the_speaker_cannot_rewrite_what_others_own(kube: Kube, chart_credentials: tuple[Path, Path],
                                                    services: dict[str, str], service: str,
                                                    body: dict[str, Any]) -> None:
    _, speaker = chart_credentials
    before = kube.get("service", services[service])
    refused = status_patch(speaker, services[service], body)
    assert refused is not None and "denied request" in refused and "ironlb-speaker-service-status" in refused
    after = kube.get("service", services[service])
    assert (after["status"], after["metadata"].get("annotations"), after["metadata"].get("labels")) == (
        before["status"], before["metadata"].get("annotations"), before["metadata"].get("labels"))


def test_the_speaker_still_writes_its_own_conditions(kube: Kube, chart_credentials: tuple[Path, Path],
                                                     services: dict[str, str]) -> None:
    _, speaker = chart_credentials
    assert status_patch(speaker, services["ours"], condition("ironlb.io/Announced", "False")) is None
    conds = kube.get("service", services["ours"])["status"]["conditions"]
    assert ("ironlb.io/Announced", "False") in [(c["type"], c["status"]) for c in conds]


def hears_peers(pod: dict[str, Any]) -> str | None:
    """The status of a Pod's HearsPeers condition."""
    return next((c["status"] for c in (pod.get("status") or {}).get("conditions") or []
                 if c["type"] == "ironlb.io/HearsPeers"), None)


def pod_status_patch(kubeconfig: Path, pod: str, ctype: str) -> str | None:
    """Set condition CTYPE on POD's status with the speaker's own client as KUBECONFIG's identity: None, or the
    refusal."""
    with kubeapi.connect(str(kubeconfig)) as api:
        try:
            api.patch(kubeapi.PODS, pod, condition(ctype, "False"), NS, subresource="status", timeout=(5.0, 10.0))
        except kubeapi.ApiError as exc:
            return f"{exc.status} {exc.message}"
    return None


def test_a_speaker_writes_only_its_own_pods_condition(kube: Kube, chart_credentials: tuple[Path, Path]) -> None:
    _, node1 = chart_credentials
    refused = pod_status_patch(node1, "ironlb-speaker-node-2", "ironlb.io/HearsPeers")  # another node's speaker
    assert refused is not None and "denied request" in refused and "ironlb-speaker-node-1" in refused, refused
    refused = pod_status_patch(node1, "ironlb-speaker-node-1", "Ready")  # the kubelet's, even on its own Pod
    assert refused is not None and "denied request" in refused, refused
    unbound = identity.token_kubeconfig("ironlb-speaker", NS, LAB_DIR / "chart-speaker-unbound.kubeconfig")
    refused = pod_status_patch(unbound, "ironlb-speaker-node-1", "ironlb.io/HearsPeers")  # bound to no Pod
    assert refused is not None and "denied request" in refused, refused
    assert pod_status_patch(node1, "ironlb-speaker-node-1", "ironlb.io/HearsPeers") is None


def bgp_node_status_apply(kubeconfig: Path, node: str, node_uid: str = "") -> str | None:
    """Server-side apply the BGPNodeStatus named NODE as KUBECONFIG's identity, as a speaker does: None, or the
    refusal."""
    resource = kubeapi.Resource(GROUP, VERSION, BGPNODESTATUSES, namespaced=False)
    with kubeapi.connect(str(kubeconfig)) as api:
        try:
            api.request("PATCH", resource.path(None, node), {"fieldManager": "ironlb-speaker", "force": True},
                        body=NodeBGPStatus(node).to_object(node_uid), content_type=kubeapi.APPLY,
                        timeout=(5.0, 10.0))
        except kubeapi.ApiError as exc:
            return f"{exc.status} {exc.message}"
    return None


def test_a_speaker_writes_only_its_own_nodes_bgp_status(kube: Kube, chart_credentials: tuple[Path, Path]) -> None:
    """RBAC lets a speaker create BGPNodeStatus objects; the chart's policy lets it write only its own node's."""
    _, node1 = chart_credentials
    policy = "ironlb-speaker-bgp-node-status"
    status = wait_for(lambda: (s := kube.get("validatingadmissionpolicy", policy, None).get("status") or {})
                      and "typeChecking" in s and s, what=f"{policy} type-checked")
    assert not status["typeChecking"].get("expressionWarnings"), status
    try:
        refused = bgp_node_status_apply(node1, "node-2")
        assert refused is not None and "denied request" in refused and "(node-1)" in refused, refused
        unbound = identity.token_kubeconfig("ironlb-speaker", NS, LAB_DIR / "chart-speaker-unbound.kubeconfig")
        refused = bgp_node_status_apply(unbound, "node-1")
        assert refused is not None and "denied request" in refused, refused
        uid = kube.get("node", "node-1", None)["metadata"]["uid"]
        assert bgp_node_status_apply(node1, "node-1", uid) is None  # created, owned by its Node ...
        assert bgp_node_status_apply(node1, "node-1", uid) is None  # ... and changed
        written = kube.get("bgpnodestatuses.ironlb.io", "node-1", None)
        assert written["status"]["node"] == "node-1" and written["metadata"]["ownerReferences"][0]["uid"] == uid
        code, err = as_user(kube, node1, "get", "bgppeers.ironlb.io,bfdprofiles.ironlb.io,bgpadvertisements.ironlb.io")
        assert code == 0, err
        code, err = as_user(kube, node1, "delete", "bgpnodestatuses.ironlb.io", "node-1")
        assert code != 0 and "forbidden" in err, err
    finally:
        kube.kubectl("delete", "bgpnodestatuses.ironlb.io", "node-1", "node-2", "--ignore-not-found", check=False)
