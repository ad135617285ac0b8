"""The chart refuses a namespace whose Pod Security level would refuse the speaker, through a real `lookup`
(helm --dry-run=server against the lab's API server), and installs where privileged pods are allowed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from e2e.testkit.testing import Kube
from tests.chart.helm import CHART

LEVELS = {"ilb-psa-baseline": "baseline", "ilb-psa-restricted": "restricted", "ilb-psa-privileged": "privileged",
          "ilb-psa-unlabelled": None}


@pytest.fixture(scope="module")
def namespaces(kube: Kube) -> Iterator[None]:
    """One namespace per Pod Security enforce level (and one without the label)."""
    for name, level in LEVELS.items():
        labels = f"\n  labels: {{pod-security.kubernetes.io/enforce: {level}}}" if level else ""
        kube.kubectl("apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}{labels}\n")
    yield
    for name in LEVELS:
        kube.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def dry_run(kube: Kube, namespace: str) -> subprocess.CompletedProcess[str]:
    """helm template with lookups answered by the API server."""
    return subprocess.run([str(kube.bin_dir / "helm"), "template", "ironlb", str(CHART), "--namespace", namespace,
                           "--dry-run=server", "--kubeconfig", str(kube.kubeconfig)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("namespace", ["ilb-psa-baseline", "ilb-psa-restricted"])
def test_a_namespace_enforcing_less_than_privileged_fails_the_install_saying_why(
        kube: Kube, namespaces: None, namespace: str) -> None:
    res = dry_run(kube, namespace)
    assert res.returncode != 0, "the chart rendered into a namespace that refuses its speaker pods"
    assert f'namespace {namespace} enforces the "{LEVELS[namespace]}" Pod Security level' in res.stderr, res.stderr
    assert f"kubectl label namespace {namespace} pod-security.kubernetes.io/enforce=privileged" in res.stderr


@pytest.mark.parametrize("namespace", ["ilb-psa-privileged", "ilb-psa-unlabelled"])
def test_a_privileged_or_unlabelled_namespace_installs(kube: Kube, namespaces: None, namespace: str) -> None:
    res = dry_run(kube, namespace)
    assert res.returncode == 0, res.stderr
    assert "kind: DaemonSet" in res.stdout
