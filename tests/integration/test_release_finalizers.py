"""`ironlb release-finalizers` against the lab's API server: the cleanup finalizer leaves exactly the Services
IronLB owns (a Service being deleted then goes), every other finalizer and the status stay, and another
implementation's Services keep theirs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from e2e.testkit.testing import Kube, wait_for
from ironlb.api.constants import LB_CLEANUP_FINALIZER

pytestmark = pytest.mark.lab
NS = "release-finalizers"
CLASS = "ironlb.io/release-finalizers-test"  # no operator of the lab serves it: nothing else touches these
KEEP = "example.com/keep"
SHOWN = [{"ip": "203.0.113.250", "ipMode": "VIP"}]  # as the API server completes it


def lb(name: str, lb_class: str, finalizers: list[str]) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS, "finalizers": finalizers},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": lb_class, "selector": {"app": name},
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


@pytest.fixture
def services(kube: Kube) -> Iterator[Kube]:
    """Three LoadBalancer Services carrying the finalizer: two of IronLB's class (one being deleted), one not."""
    kube.kubectl("create", "namespace", NS)
    try:
        kube.apply(lb("ours", CLASS, [KEEP, LB_CLEANUP_FINALIZER]), lb("going", CLASS, [LB_CLEANUP_FINALIZER]),
                   lb("theirs", "cloud.example/lb", [LB_CLEANUP_FINALIZER]))
        kube.kubectl("patch", "service", "ours", "-n", NS, "--subresource=status", "--type=merge",
                     "-p", json.dumps({"status": {"loadBalancer": {"ingress": SHOWN}}}))
        kube.kubectl("delete", "service", "going", "-n", NS, "--wait=false")
        yield kube
    finally:
        for name in ("ours", "going", "theirs"):
            kube.kubectl("patch", "service", name, "-n", NS, "--type=merge", "-p",
                         '{"metadata": {"finalizers": null}}', check=False)
        kube.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def test_only_ironlbs_finalizer_leaves_only_ironlbs_services(services: Kube) -> None:
    env = {**os.environ, "KUBECONFIG": str(services.kubeconfig)}
    run = subprocess.run([sys.executable, "-c", "from ironlb.cli.main import main; main()", "release-finalizers",
                          "--lb-class", CLASS, "--timeout", "30"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    # The counts are the cluster's: an earlier test's Services may still be going (the checks below are this test's).
    summary = re.fullmatch(r"cleanup finalizers: (\d+) released, (\d+) gone, 0 failed; (\d+) left to other "
                           r"implementations \(another loadBalancerClass\); done", run.stdout.splitlines()[-1])
    assert summary, run.stdout
    released, gone, others = map(int, summary.groups())
    assert released + gone >= 2 and others >= 1, run.stdout  # ours and going; theirs
    assert f"took the cleanup finalizer off {NS}/ours (its status still shows 203.0.113.250" in run.stdout
    ours = services.get("service", "ours", NS)
    assert ours["metadata"]["finalizers"] == [KEEP]  # only IronLB's went
    assert ours["status"]["loadBalancer"]["ingress"] == SHOWN  # and nothing else of it
    wait_for(lambda: services.kubectl("get", "service", "going", "-n", NS, check=False).returncode != 0,
             timeout=10, what="the Service being deleted gone")
    assert services.get("service", "theirs", NS)["metadata"]["finalizers"] == [LB_CLEANUP_FINALIZER]
