"""`helm install` into the lab's API server, then IronLB running with the chart's own ServiceAccounts:
the LoadBalancer path works (the RBAC is sufficient) and a request outside the rules is refused."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.lab import lab
from e2e.lab.config import LAB_DIR, REPO
from e2e.lab.config import node as lab_node
from e2e.lab.testing import Kube, pool_manifests, wait_for

pytestmark = pytest.mark.lab
NS = "ironlb-system"


@pytest.fixture(scope="module")
def chart_credentials(kube: Kube) -> Iterator[tuple[Path, Path]]:
    """Install the chart; yield kubeconfigs of its operator and speaker ServiceAccounts."""
    kube.kubectl("create", "namespace", NS, check=False)
    kube.helm("upgrade", "--install", "ironlb", str(REPO / "charts" / "ironlb"), "--namespace", NS,
              "--wait=false")
    operator = lab.token_kubeconfig("ironlb-operator", NS, LAB_DIR / "chart-operator.kubeconfig")
    speaker = lab.token_kubeconfig("ironlb-speaker", NS, LAB_DIR / "chart-speaker.kubeconfig")
    lab.start_ironlb_as(operator, speaker, NS, "ironlb-heartbeat")
    yield operator, speaker
    lab.stop_ironlb()
    lab.start_ironlb()
    kube.helm("uninstall", "ironlb", "--namespace", NS, check=False)
    # What the operator created is owned by its Deployment: the garbage collector takes it too.
    wait_for(lambda: not kube.kubectl("get", "secret,lease", "-n", NS, "-o", "name", check=False).stdout.strip(),
             timeout=30, what="the operator's Secret and Lease to go with the release")


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


def test_metrics_are_reviewed_with_the_chart_rbac(kube: Kube, chart_credentials: tuple[Path, Path]) -> None:
    """A speaker with the chart's ServiceAccount and listeners asks the API server about each token: a reader bound
    to the chart's metrics-reader ClusterRole gets the page, anyone else 401 (unknown) or 403 (not allowed)."""
    _, speaker = chart_credentials
    ip = lab_node(1).ipv4
    lab.start_speaker_as("node-1", speaker, NS, "ironlb-heartbeat",
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
        lab.start_speaker_as("node-1", speaker, NS, "ironlb-heartbeat")


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
        cond = wait_for(lambda: next((c for c in kube.get("service", "helm-web").get("status", {}).get("conditions")
                                      or [] if c["type"] == "ironlb.io/Announced"), None), what="Announced")
        assert cond["status"] == "True"
        lease = kube.get("lease", "ironlb-operator", NS)
        assert lease["spec"]["holderIdentity"] == "chart-operator"
        pool = wait_for(lambda: (kube.get("ipaddresspool", "helm-pool", None).get("status") or {})
                        .get("assignedIPv4"), what="pool status written")
        assert pool == 1
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
