"""The speaker's placement values: memory request, priority class, excluded interfaces; the operator's RBAC
holds no unused grant; the Pod Security check stays silent where `lookup` has no cluster to ask."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART
from tests.chart.test_chart_template import container, env, find

MI = 1024 * 1024


def render_json(helm: Path, *sets: str) -> list[dict[str, Any]]:
    """helm template with --set-json values (lists and strings as JSON); every rendered object."""
    args = [str(helm), "template", "ironlb", str(CHART), "--namespace", "ironlb-system", "--kube-version", "1.34.4"]
    for s in sets:
        args += ["--set-json", s]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def refused(helm: Path, *sets: str) -> str:
    """helm template's error for values the schema refuses."""
    args = [str(helm), "template", "ironlb", str(CHART)] + [a for s in sets for a in ("--set-json", s)]
    res = subprocess.run(args, capture_output=True, text=True)
    assert res.returncode != 0, f"{sets} rendered"
    return res.stderr


def mebibytes(quantity: str) -> float:
    """A memory quantity in MiB (Mi and Gi suffixes)."""
    units = {"Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_speaker_defaults_request_its_real_memory_and_a_node_critical_priority(helm: Path) -> None:
    speaker = find(render_json(helm), "DaemonSet", "-speaker")
    pod = speaker["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "system-node-critical"
    resources = container(speaker)["resources"]
    # The request is what the scheduler reserves: near what a speaker serving a large cluster holds.
    assert 96 <= mebibytes(resources["requests"]["memory"]) < mebibytes(resources["limits"]["memory"])
    assert resources["limits"]["memory"] == "384Mi"
    assert env(speaker)["IRONLB_EXCLUDE_INTERFACES"] == ""


def test_priority_class_can_be_changed_or_left_out(helm: Path) -> None:
    custom = find(render_json(helm, 'speaker.priorityClassName="lb-critical"'), "DaemonSet", "-speaker")
    assert custom["spec"]["template"]["spec"]["priorityClassName"] == "lb-critical"
    none = find(render_json(helm, 'speaker.priorityClassName=""'), "DaemonSet", "-speaker")
    assert "priorityClassName" not in none["spec"]["template"]["spec"]


def test_excluded_interfaces_reach_the_speaker(helm: Path) -> None:
    speaker = find(render_json(helm, 'speaker.excludeInterfaces=["mgmt0","docker*","eth[23]"]'), "DaemonSet",
                   "-speaker")
    assert env(speaker)["IRONLB_EXCLUDE_INTERFACES"] == "mgmt0,docker*,eth[23]"


@pytest.mark.parametrize("value", ['"docker*"', '["a,b"]', '[""]', '["x","x"]'])
def test_excluded_interfaces_the_schema_refuses(helm: Path, value: str) -> None:
    # The value itself is at fault (a chart without the key would refuse it too, but at '/speaker').
    assert "at '/speaker/excludeInterfaces" in refused(helm, f"speaker.excludeInterfaces={value}")


def test_the_operator_is_granted_only_the_events_api_it_writes(helm: Path) -> None:
    role = find(render_json(helm), "ClusterRole", "-operator")
    groups = {g for rule in role["rules"] for g in rule["apiGroups"] if "events" in rule["resources"]}
    assert groups == {""}  # core/v1 Events (ironlb.common.events); nothing writes events.k8s.io


def test_the_pod_security_check_renders_nothing_without_a_cluster(helm: Path) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in render_json(helm)}
    assert ("DaemonSet", "ironlb-speaker") in names  # `lookup` found no namespace: the install is not refused
