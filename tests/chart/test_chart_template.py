"""The Helm chart rendered over a matrix of values: security posture and wiring."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART


def render(helm: Path, *sets: str) -> list[dict[str, Any]]:
    """helm template with --set values; every rendered object."""
    args = [str(helm), "template", "ironlb", str(CHART), "--namespace", "ironlb-system",
            "--kube-version", "1.34.4", "--include-crds"]
    for s in sets:  # a float is a string to --set; --set-json keeps it a number
        args += ["--set-json" if s.split("=", 1)[0].endswith(("Seconds", "threshold")) else "--set", s]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(objs: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    """The one object of KIND whose name ends with SUFFIX."""
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]
    assert len(matches) == 1, f"{kind} *{suffix}: {[m['metadata']['name'] for m in matches]}"
    return matches[0]


def container(obj: dict[str, Any]) -> dict[str, Any]:
    """The first container of a workload."""
    return obj["spec"]["template"]["spec"]["containers"][0]


def env(obj: dict[str, Any]) -> dict[str, str]:
    """A workload's container env as a dict of literal values."""
    return {e["name"]: e.get("value") for e in container(obj).get("env", [])}


def test_lint(helm: Path) -> None:
    res = subprocess.run([str(helm), "lint", str(CHART)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_defaults_least_privilege(helm: Path) -> None:
    objs = render(helm)
    speaker = find(objs, "DaemonSet", "-speaker")
    caps = container(speaker)["securityContext"]["capabilities"]
    # NET_RAW for the packet sockets; NET_ADMIN and BPF load and attach the in-kernel ARP responder.
    assert caps == {"drop": ["ALL"], "add": ["NET_RAW", "NET_ADMIN", "BPF"]}
    assert env(speaker)["IRONLB_KERNEL_ARP"] == "true"
    assert env(speaker)["IRONLB_ON_API_LOSS"] == "answer"  # the last survivor keeps answering
    assert env(speaker)["MALLOC_ARENA_MAX"] == "2"  # threads share two heaps, not one each
    # The runtime grants no ambient capabilities: only uid 0 keeps the added ones across execve.
    speaker_pod = speaker["spec"]["template"]["spec"]["securityContext"]
    assert (speaker_pod["runAsUser"], speaker_pod["runAsGroup"], speaker_pod["runAsNonRoot"]) == (0, 0, False)
    assert container(speaker)["securityContext"]["allowPrivilegeEscalation"] is False
    assert container(speaker)["securityContext"]["readOnlyRootFilesystem"] is True
    assert speaker["spec"]["template"]["spec"]["hostNetwork"] is True
    tolerated = {t["key"] for t in speaker["spec"]["template"]["spec"]["tolerations"]}
    assert "node-role.kubernetes.io/control-plane" in tolerated
    operator = find(objs, "Deployment", "-operator")
    pod = operator["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert "runAsUser" not in container(operator)["securityContext"]  # the pod's non-root uid holds
    assert container(operator)["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert not [o for o in objs if o["kind"] == "PodDisruptionBudget"]  # one replica: nothing to protect
    crds = {o["metadata"]["name"] for o in objs if o["kind"] == "CustomResourceDefinition"}
    assert crds == {"ipaddresspools.ironlb.io", "l2advertisements.ironlb.io", "bgppeers.ironlb.io",
                    "bfdprofiles.ironlb.io", "bgpadvertisements.ironlb.io", "bgpnodestatuses.ironlb.io"}


def test_rbac_grants_no_wildcards_and_one_secret(helm: Path) -> None:
    objs = render(helm)
    for role in (o for o in objs if o["kind"] in ("ClusterRole", "Role")):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule.get("resources", []), role["metadata"]["name"]
            assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])
    speaker_role = find(objs, "Role", "-speaker")
    secret_rules = [r for r in speaker_role["rules"] if "secrets" in r["resources"]]
    assert secret_rules and all(r.get("resourceNames") == ["ironlb-heartbeat"] for r in secret_rules)
    for cluster_role in (o for o in objs if o["kind"] == "ClusterRole"):
        assert not [r for r in cluster_role["rules"] if "secrets" in r.get("resources", [])]


def test_the_speakers_presence_is_read_from_node_leases_and_speaker_pods(helm: Path) -> None:
    """Nothing is renewed on a timer: list node Leases (their namespace only) and speaker Pods, and patch
    Pod status (narrowed to its own Pod's condition by the admission policy); no ConfigMap at all."""
    objs = render(helm)
    assert not [o for o in objs if o["kind"] == "ConfigMap"]
    leases = find(objs, "Role", "-speaker-node-leases")
    assert leases["metadata"]["namespace"] == "kube-node-lease"
    assert leases["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list"]}]
    binding = find(objs, "RoleBinding", "-speaker-node-leases")
    assert binding["subjects"][0]["name"] == find(objs, "ServiceAccount", "-speaker")["metadata"]["name"]
    rules = find(objs, "Role", "-speaker")["rules"]
    assert {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]} in rules
    assert {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch"]} in rules
    assert not [r for r in rules if "configmaps" in r["resources"]]
    speaker = find(objs, "DaemonSet", "-speaker")
    selector = dict(pair.split("=") for pair in env(speaker)["IRONLB_SPEAKER_SELECTOR"].split(","))
    assert selector == speaker["spec"]["template"]["metadata"]["labels"] == speaker["spec"]["selector"]["matchLabels"]
    pod_name = next(e for e in container(speaker)["env"] if e["name"] == "POD_NAME")
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env(speaker)["IRONLB_NODE_LEASE_NAMESPACE"] == "kube-node-lease"


def test_heartbeat_secret_is_made_by_the_operator_not_the_chart(helm: Path) -> None:
    """No key is rendered (it would change on every `helm template`); the operator creates it."""
    objs = render(helm)
    assert not [o for o in objs if o["kind"] == "Secret"]
    operator, speaker = env(find(objs, "Deployment", "-operator")), env(find(objs, "DaemonSet", "-speaker"))
    assert operator["IRONLB_HEARTBEAT_SECRET"] == speaker["IRONLB_HEARTBEAT_SECRET"] == "ironlb-heartbeat"
    assert operator["IRONLB_OWNER_DEPLOYMENT"] == find(objs, "Deployment", "-operator")["metadata"]["name"]
    role = find(objs, "Role", "-operator")
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]} in role["rules"]
    assert {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["ironlb-heartbeat"],
            "verbs": ["get", "patch"]} in role["rules"]
    objs = render(helm, "heartbeatSecret.name=mine", "heartbeatSecret.key=hmac")
    assert "IRONLB_HEARTBEAT_SECRET" not in env(find(objs, "Deployment", "-operator"))
    assert not [r for r in find(objs, "Role", "-operator")["rules"] if "secrets" in r["resources"]]
    assert env(find(objs, "DaemonSet", "-speaker"))["IRONLB_HEARTBEAT_SECRET_KEY"] == "hmac"


def test_without_the_kernel_responder_the_speaker_has_no_bpf(helm: Path) -> None:
    speaker = find(render(helm, "speaker.kernelArp=false"), "DaemonSet", "-speaker")
    assert container(speaker)["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_RAW", "NET_ADMIN"]}
    assert env(speaker)["IRONLB_KERNEL_ARP"] == "false"


def test_the_api_loss_policy_is_a_checked_choice(helm: Path) -> None:
    speaker = find(render(helm, "speaker.onApiLoss=fence"), "DaemonSet", "-speaker")
    assert env(speaker)["IRONLB_ON_API_LOSS"] == "fence"
    with pytest.raises(subprocess.CalledProcessError):
        render(helm, "speaker.onApiLoss=sometimes")


def test_nodeport_forwarding_adds_net_admin_only_then(helm: Path) -> None:
    objs = render(helm, "speaker.nodePortForwarding=true", "speaker.kernelArp=false")
    caps = container(find(objs, "DaemonSet", "-speaker"))["securityContext"]["capabilities"]
    assert caps["add"] == ["NET_RAW", "NET_ADMIN"]
    objs = render(helm, "speaker.nodePortForwarding=true")
    caps = container(find(objs, "DaemonSet", "-speaker"))["securityContext"]["capabilities"]
    assert caps["add"] == ["NET_RAW", "NET_ADMIN", "BPF"]  # NET_ADMIN once


def test_steering_around_dead_nodes_is_on_by_default_and_adds_net_admin_only_then(helm: Path) -> None:
    speaker = find(render(helm, "speaker.kernelArp=false"), "DaemonSet", "-speaker")
    assert env(speaker)["IRONLB_STEERING"] == "true"
    assert container(speaker)["securityContext"]["capabilities"]["add"] == ["NET_RAW", "NET_ADMIN"]
    speaker = find(render(helm, "speaker.kernelArp=false", "speaker.steerAroundDeadNodes=false"), "DaemonSet",
                   "-speaker")
    assert env(speaker)["IRONLB_STEERING"] == "false"
    assert container(speaker)["securityContext"]["capabilities"]["add"] == ["NET_RAW"]


def test_custom_class_and_ha(helm: Path) -> None:
    objs = render(helm, "loadBalancerClass=example.com/ironlb", "operator.replicas=2")
    for kind, suffix in (("Deployment", "-operator"), ("DaemonSet", "-speaker")):
        assert env(find(objs, kind, suffix))["IRONLB_LB_CLASS"] == "example.com/ironlb"
    assert find(objs, "Deployment", "-operator")["spec"]["replicas"] == 2
    assert find(objs, "PodDisruptionBudget", "-operator")["spec"]["minAvailable"] == 1


def test_service_monitor_optional(helm: Path) -> None:
    assert not [o for o in render(helm) if o["kind"] == "ServiceMonitor"]
    monitors = [o for o in render(helm, "metrics.serviceMonitor.enabled=true") if o["kind"] == "ServiceMonitor"]
    assert len(monitors) == 2
    for monitor in monitors:  # Prometheus scrapes with its own token, which the reader role lets in
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    local = [o for o in render(helm, "metrics.serviceMonitor.enabled=true", "speaker.metricsLocalOnly=true")
             if o["kind"] == "ServiceMonitor"]
    assert [o["metadata"]["name"] for o in local] == ["ironlb-operator"]  # node-local speakers: no scrape


@pytest.mark.parametrize("bad, message", [
    ("operator.replicas=0", "minimum"),
    ("logFormat=xml", "value must be one of"),
    ("speaker.heartbeatPort=70000", "maximum"),
    ("speaker.heartbeatIntervalSeconds=0.001", "minimum"),
    ("speaker.heartbeatTimeoutSeconds=0.06", "at least three heartbeat intervals"),
    ("image.pullPolicy=Sometimes", "value must be one of"),
    ("metrics.serviceMonitor.interval=soon", "does not match pattern"),
    ("unknownKey=1", "additional properties"),
])
def test_bad_values_fail_with_clear_message(helm: Path, bad: str, message: str) -> None:
    flag = "--set-json" if bad.split("=", 1)[0].endswith("Seconds") else "--set"
    res = subprocess.run([str(helm), "template", "x", str(CHART), "--kube-version", "1.34.4", flag, bad],
                         capture_output=True, text=True)
    assert res.returncode != 0
    assert message in res.stderr, res.stderr


def test_renders_without_kube_version(helm: Path) -> None:
    # helm built as its releases are defaults to the Kubernetes version of its client libraries,
    # which the chart's kubeVersion (>=1.30.0-0) accepts; the v1.20 fallback would be refused.
    res = subprocess.run([str(helm), "template", "t", str(CHART)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "kind: DaemonSet" in res.stdout


def test_operator_lease_belongs_to_the_release(helm: Path) -> None:
    # helm uninstall deletes what the chart rendered: the Lease the operator holds is one of them.
    objs = render(helm)
    lease = find(objs, "Lease", "-operator")
    assert "spec" not in lease  # the operator writes the holder; no upgrade resets it
    assert env(find(objs, "Deployment", "-operator"))["IRONLB_LEASE_NAME"] == lease["metadata"]["name"]


def test_heartbeat_timings_reach_the_speaker_and_parse_there(helm: Path) -> None:
    from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S
    from ironlb.speaker.main import parse_args

    speaker = env(find(render(helm), "DaemonSet", "-speaker"))  # the chart's defaults are the speaker's
    assert (float(speaker["IRONLB_HEARTBEAT_INTERVAL"]), float(speaker["IRONLB_HEARTBEAT_TIMEOUT"])) == (
        INTERVAL_S, TIMEOUT_S)
    assert speaker["IRONLB_HEARTBEAT_TOPOLOGY"] == parse_args(["--node", "n1"]).heartbeat_topology == "ring"
    speaker = env(find(render(helm, "speaker.heartbeatIntervalSeconds=0.05", "speaker.heartbeatTimeoutSeconds=0.25",
                              "speaker.heartbeatTopology=mesh"), "DaemonSet", "-speaker"))
    with pytest.MonkeyPatch.context() as mp:  # what the speaker makes of the rendered environment
        for name in ("IRONLB_HEARTBEAT_INTERVAL", "IRONLB_HEARTBEAT_TIMEOUT", "IRONLB_HEARTBEAT_TOPOLOGY"):
            mp.setenv(name, speaker[name])
        args = parse_args(["--node", "n1"])
    assert (args.heartbeat_interval, args.heartbeat_timeout, args.heartbeat_topology) == (0.05, 0.25, "mesh")


NODE_IP = "192.0.2.11"  # what status.hostIP gives a hostNetwork pod


def listening(objs: list[dict[str, Any]], kind: str, suffix: str) -> tuple[Any, dict[str, Any]]:
    """What the component makes of its rendered environment (HOST_IP as the node's): its parsed options."""
    from ironlb.operator.main import parse_args as operator_args
    from ironlb.speaker.main import parse_args as speaker_args

    workload = find(objs, kind, suffix)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env(workload).items():
            if value is not None:
                mp.setenv(name, value.replace("$(HOST_IP)", NODE_IP))
        args = speaker_args(["--node", "n1"]) if kind == "DaemonSet" else operator_args([])
    return args, container(workload)


@pytest.mark.parametrize("sets", [(), ("metrics.auth=none",), ("speaker.metricsLocalOnly=true",),
                                  ("speaker.metricsPort=9100", "speaker.healthPort=9101")])
def test_nothing_on_the_nodes_any_address_and_no_metrics_off_loopback_without_a_token(
        helm: Path, sets: tuple[str, ...]) -> None:
    from ironlb.common.listen import AUTH_KUBERNETES, is_loopback, metrics_auth

    objs = render(helm, *sets)
    args, speaker = listening(objs, "DaemonSet", "-speaker")
    assert args.metrics_host not in ("0.0.0.0", "::", "") and args.health_host == "127.0.0.1"
    assert args.metrics_host == ("127.0.0.1" if "speaker.metricsLocalOnly=true" in sets else NODE_IP)
    if "metrics.auth=none" not in sets:  # plain HTTP off the loopback only on that explicit opt-in
        assert is_loopback(args.metrics_host) or metrics_auth(args) == AUTH_KUBERNETES
    for probe in ("livenessProbe", "readinessProbe"):  # answered apart from metrics, on the loopback
        assert speaker[probe]["httpGet"]["host"] == "127.0.0.1"
        assert speaker[probe]["httpGet"]["port"] == args.health_port != args.metrics_port
    operator, op = listening(objs, "Deployment", "-operator")
    assert metrics_auth(operator) == ("none" if "metrics.auth=none" in sets else AUTH_KUBERNETES)
    assert operator.health_port and {p["name"]: p["containerPort"] for p in op["ports"]}["health"] == (
        operator.health_port)
    assert op["livenessProbe"]["httpGet"]["port"] == "health"


def test_metrics_auth_has_its_rbac_and_a_reader_role_to_bind(helm: Path) -> None:
    reviews = [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
               {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}]
    objs = render(helm, "metrics.readers[0].kind=ServiceAccount", "metrics.readers[0].name=prometheus",
                  "metrics.readers[0].namespace=monitoring", "metrics.readers[1].kind=Group",
                  "metrics.readers[1].name=ops")
    for suffix in ("-speaker", "-operator"):
        rules = find(objs, "ClusterRole", suffix)["rules"]
        assert all(r in rules for r in reviews)
    assert find(objs, "ClusterRole", "-metrics-reader")["rules"] == [{"nonResourceURLs": ["/metrics"],
                                                                      "verbs": ["get"]}]
    binding = find(objs, "ClusterRoleBinding", "-metrics-reader")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"},
                                   {"kind": "Group", "name": "ops", "apiGroup": "rbac.authorization.k8s.io"}]
    plain = render(helm, "metrics.auth=none")
    assert not [r for r in find(plain, "ClusterRole", "-speaker")["rules"] if r in reviews]
    assert not [o for o in render(helm) if o["kind"] == "ClusterRoleBinding" and "metrics" in o["metadata"]["name"]]


def test_doctor_has_a_service_account_that_may_read_metrics_and_nothing_else(helm: Path) -> None:
    """`ironlb doctor` requests tokens of <release>-doctor: bound to the metrics-reader role only, no pod uses it."""
    objs = render(helm)
    sa = find(objs, "ServiceAccount", "-doctor")
    assert sa["metadata"]["labels"]["app.kubernetes.io/component"] == "doctor"
    assert sa["automountServiceAccountToken"] is False
    bound = [o for o in objs if o["kind"] in ("ClusterRoleBinding", "RoleBinding")
             and any(s["name"] == sa["metadata"]["name"] for s in o.get("subjects") or [])]
    assert [(b["kind"], b["roleRef"]["name"]) for b in bound] == [("ClusterRoleBinding", "ironlb-metrics-reader")]
    assert bound[0]["subjects"] == [{"kind": "ServiceAccount", "name": "ironlb-doctor", "namespace": "ironlb-system"}]
    for sets in (("metrics.auth=none",), ("metrics.doctor=false",)):
        assert not [o for o in render(helm, *sets) if o["metadata"]["name"].endswith("-doctor")]


def test_metrics_tls_from_a_secret_reaches_both_and_the_monitors_scrape_https(helm: Path) -> None:
    objs = render(helm, "metrics.tlsSecret=ironlb-metrics-tls", "metrics.serviceMonitor.enabled=true",
                  "metrics.serviceMonitor.tlsConfig.serverName=ironlb-metrics")
    for kind, suffix in (("DaemonSet", "-speaker"), ("Deployment", "-operator")):
        args, _ = listening(objs, kind, suffix)
        assert (args.metrics_tls_cert, args.metrics_tls_key) == ("/etc/ironlb/metrics-tls/tls.crt",
                                                                 "/etc/ironlb/metrics-tls/tls.key")
        volumes = find(objs, kind, suffix)["spec"]["template"]["spec"]["volumes"]
        assert {"name": "metrics-tls", "secret": {"secretName": "ironlb-metrics-tls"}} in volumes
    for monitor in (o for o in objs if o["kind"] == "ServiceMonitor"):
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["scheme"] == "https" and endpoint["tlsConfig"] == {"serverName": "ironlb-metrics"}
    plain, _ = listening(render(helm), "DaemonSet", "-speaker")
    assert plain.metrics_tls_cert is None


def test_the_speakers_read_the_exclusion_label_unless_told_to_ignore_it(helm: Path) -> None:
    assert env(find(render(helm), "DaemonSet", "-speaker"))["IRONLB_IGNORE_EXCLUDE_LB"] == "false"
    speaker = find(render(helm, "speaker.ignoreExcludeLB=true"), "DaemonSet", "-speaker")
    assert env(speaker)["IRONLB_IGNORE_EXCLUDE_LB"] == "true"
