"""The chart's uninstall hook: a pre-delete Job that stops the operator and releases the cleanup finalizers, with
RBAC for exactly that, and nothing of it left once helm is done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.chart.test_chart_template import container, find, render

HOOK = "-release-finalizers"
KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Job")


def hook_objects(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The hook's objects, by kind."""
    return {o["kind"]: o for o in objs if o["metadata"]["name"].endswith(HOOK)}


def test_every_object_is_a_pre_delete_hook_deleted_whatever_the_outcome_and_the_rbac_comes_first(helm: Path) -> None:
    objs = hook_objects(render(helm))
    assert sorted(objs) == sorted(KINDS)
    weights = {}
    for kind, obj in objs.items():
        annotations = obj["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-delete", kind
        assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {
            "before-hook-creation", "hook-succeeded", "hook-failed"}, kind
        weights[kind] = int(annotations["helm.sh/hook-weight"])
    assert all(weight < weights["Job"] for kind, weight in weights.items() if kind != "Job")


def test_the_rbac_reads_services_writes_only_their_status_and_scales_only_this_operator(helm: Path) -> None:
    rendered = render(helm)
    objs, operator = hook_objects(rendered), find(rendered, "Deployment", "-operator")["metadata"]
    assert objs["ClusterRole"]["rules"] == [
        {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["services/status"], "verbs": ["patch"]}]
    assert objs["Role"]["metadata"]["namespace"] == operator["namespace"]
    assert objs["Role"]["rules"] == [
        {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": [operator["name"]], "verbs": ["get"]},
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "resourceNames": [operator["name"]],
         "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    account = objs["ServiceAccount"]["metadata"]
    for binding in (objs["ClusterRoleBinding"], objs["RoleBinding"]):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"],
                                        "namespace": account["namespace"]}]
        assert binding["roleRef"]["name"] == objs[binding["roleRef"]["kind"]]["metadata"]["name"]
    assert objs["Job"]["spec"]["template"]["spec"]["serviceAccountName"] == account["name"]


def test_the_job_runs_ironlbs_image_bounded_and_unprivileged_against_this_release(helm: Path) -> None:
    rendered = render(helm, "loadBalancerClass=ironlb.io/lb", "uninstallHook.timeoutSeconds=30")
    job, operator = hook_objects(rendered)["Job"], find(rendered, "Deployment", "-operator")
    run = container(job)
    assert run["image"] == container(operator)["image"]
    assert run["command"] == ["ironlb", "release-finalizers", "--lb-class", "ironlb.io/lb", "--timeout", "30",
                              "--stop-operator", f"ironlb-system/{operator['metadata']['name']}"]
    assert job["spec"]["activeDeadlineSeconds"] > 30 and job["spec"]["backoffLimit"] <= 1
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    assert run["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                      "capabilities": {"drop": ["ALL"]}}
    # Its pod is not one of the operator's: waiting for those to go never waits for itself.
    selector = operator["spec"]["selector"]["matchLabels"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= labels.items()


def test_the_switch_leaves_the_hook_out(helm: Path) -> None:
    assert not hook_objects(render(helm, "uninstallHook.enabled=false"))
