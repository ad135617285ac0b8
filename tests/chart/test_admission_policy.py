"""The speaker's ValidatingAdmissionPolicies: rendered by default, aimed at the speaker's ServiceAccount only,
limiting Pod status writes to the speaker's own Pod and the class the chart serves; off by a value."""

from __future__ import annotations

from pathlib import Path

from ironlb.api.annotations import ALLOCATED_FROM_POOL
from ironlb.api.constants import LB_CLEANUP_FINALIZER
from ironlb.api.reasons import SPEAKER_CONDITIONS, ConditionType
from tests.chart.test_chart_template import find, render


def test_policies_bind_the_speaker_alone(helm: Path) -> None:
    objs = render(helm)
    speaker_sa = find(objs, "ServiceAccount", "-speaker")["metadata"]["name"]
    user = f"'system:serviceaccount:ironlb-system:{speaker_sa}'"
    status = find(objs, "ValidatingAdmissionPolicy", "-speaker-service-status")
    presence = find(objs, "ValidatingAdmissionPolicy", "-speaker-pod-status")
    for policy in (status, presence):
        assert policy["spec"]["failurePolicy"] == "Fail"
        assert [c["expression"] for c in policy["spec"]["matchConditions"]] == [f"request.userInfo.username == {user}"]
        binding = find(objs, "ValidatingAdmissionPolicyBinding", policy["metadata"]["name"].removeprefix("ironlb"))
        assert binding["spec"]["policyName"] == policy["metadata"]["name"]
        assert binding["spec"]["validationActions"] == ["Deny"]
    assert status["spec"]["matchConstraints"]["resourceRules"][0]["resources"] == ["services/status"]
    checks = " ".join(v["expression"] for v in status["spec"]["validations"])
    assert "object.spec.?loadBalancerClass.orValue('') == ''" in checks and "status.?loadBalancer" in checks
    (rule,) = presence["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["pods/status"] and rule["operations"] == ["UPDATE"]
    variables = {v["name"]: v["expression"] for v in presence["spec"]["variables"]}
    assert "authentication.kubernetes.io/pod-name" in variables["pod"]
    assert "variables.pod == object.metadata.name" in presence["spec"]["validations"][0]["expression"]
    binding = find(objs, "ValidatingAdmissionPolicyBinding", "-speaker-pod-status")
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ironlb-system"}


def test_the_class_served_is_the_class_checked(helm: Path) -> None:
    status = find(render(helm, "loadBalancerClass=example.com/lb"), "ValidatingAdmissionPolicy", "-service-status")
    assert "orValue('') == 'example.com/lb'" in status["spec"]["validations"][0]["expression"]


def test_policies_can_be_left_out(helm: Path) -> None:
    kinds = {o["kind"] for o in render(helm, "admissionPolicy.enabled=false")}
    assert not kinds & {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


def test_the_speaker_may_change_exactly_its_own_conditions(helm: Path) -> None:
    """The policy names the condition types the speaker writes (ironlb.api), so the operator's Allocated
    condition and any other ironlb.io/ type stay out of a speaker's reach."""
    status = find(render(helm), "ValidatingAdmissionPolicy", "-service-status")
    listed = "[" + ", ".join(f"'{c.value}'" for c in SPEAKER_CONDITIONS) + "]"
    for variable in status["spec"]["variables"]:
        assert f"!(c.type in {listed})" in variable["expression"]
    assert ConditionType.SERVICE_ALLOCATED not in SPEAKER_CONDITIONS


def test_a_service_ironlb_withdraws_stays_writable_for_the_withdrawal(helm: Path) -> None:
    """Changed away from LoadBalancer, a Service keeps the cleanup finalizer until the speaker that announced it
    says Withdrawn: the policy lets that write through on such a Service (finalizer and IronLB's annotation)."""
    status = find(render(helm), "ValidatingAdmissionPolicy", "-service-status")
    served = status["spec"]["validations"][0]["expression"]
    assert f"'{LB_CLEANUP_FINALIZER}' in object.metadata.?finalizers.orValue([])" in served
    assert f"'{ALLOCATED_FROM_POOL}' in object.metadata.?annotations.orValue({{}})" in served

def test_a_speaker_writes_the_bgp_node_status_of_its_own_node_only(helm: Path) -> None:
    """RBAC lets the speaker create and patch BGPNodeStatus objects (a create cannot be tied to a name); the policy
    ties the name to the node of the Pod the token is bound to. Reading BGP objects needs no policy."""
    objs = render(helm)
    policy = find(objs, "ValidatingAdmissionPolicy", "-speaker-bgp-node-status")
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["apiGroups"], rule["resources"], rule["operations"]) == (["ironlb.io"], ["bgpnodestatuses"],
                                                                          ["CREATE", "UPDATE"])
    assert "system:serviceaccount:ironlb-system:ironlb-speaker" in policy["spec"]["matchConditions"][0]["expression"]
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert "authentication.kubernetes.io/node-name" in variables["node"]
    assert policy["spec"]["validations"][0]["expression"] == "variables.node != '' && variables.node == request.name"
    binding = find(objs, "ValidatingAdmissionPolicyBinding", "-speaker-bgp-node-status")
    assert (binding["spec"]["policyName"], binding["spec"]["validationActions"]) == (policy["metadata"]["name"],
                                                                                     ["Deny"])
    rules = find(objs, "ClusterRole", "-speaker")["rules"]
    assert {"apiGroups": ["ironlb.io"], "resources": ["bgpnodestatuses"], "verbs": ["get", "create", "patch"]} in rules
    assert {"apiGroups": ["ironlb.io"], "resources": ["bgppeers", "bfdprofiles", "bgpadvertisements"],
            "verbs": ["get", "list", "watch"]} in rules
    assert "bgpnodestatuses" not in str(find(objs, "ClusterRole", "-operator")["rules"])


def test_the_speaker_reads_the_listed_bgp_password_secrets_and_no_other(helm: Path) -> None:
    rules = find(render(helm, "bgpPasswordSecrets={bgp-auth,tor-b}"), "Role", "-speaker")["rules"]
    secrets = [r for r in rules if "secrets" in r["resources"]]
    assert [r["resourceNames"] for r in secrets] == [["ironlb-heartbeat"], ["bgp-auth", "tor-b"]]
    assert all(r["verbs"] == ["get", "list", "watch"] for r in secrets)


def test_the_operator_reads_the_bgp_objects_and_the_listed_password_secrets_and_no_other(helm: Path) -> None:
    docs = render(helm, "bgpPasswordSecrets={bgp-auth,tor-b}")
    cluster = find(docs, "ClusterRole", "-operator")["rules"]
    assert {"apiGroups": ["ironlb.io"], "resources": ["bgppeers/status", "bfdprofiles/status",
                                                     "bgpadvertisements/status"], "verbs": ["patch"]} in cluster
    secrets = [r for r in find(docs, "Role", "-operator")["rules"] if r.get("resourceNames") == ["bgp-auth", "tor-b"]]
    assert [r["verbs"] for r in secrets] == [["get", "list", "watch"]]
