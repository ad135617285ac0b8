"""IronLB as a user's cluster runs it: `helm install` of the chart, the image built from the
Dockerfile, real kubelets, containerd and runc (`up --kubelet`). What only real nodes can show:
the pods' probes, the capabilities and uid a container really gets, the read-only root filesystem,
the projected ServiceAccount tokens, and what `helm uninstall` leaves behind."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.lab import lab, netns, reallab
from e2e.lab.config import KUBECONFIG, REPO, node
from e2e.lab.tools import bin_dir
from e2e.testkit.testing import Kube, pool_manifests, wait_for
from ironlb.core.election import elect

pytestmark = [pytest.mark.lab, pytest.mark.kubelet]
NODES = ["node-1", "node-2"]
NS = reallab.NAMESPACE
CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF = 12, 13, 39
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def real() -> Iterator[Kube]:
    """A lab of two real nodes with IronLB installed by helm; taken down afterwards."""
    lab.up(nodes=len(NODES), kubelet=True)
    try:
        yield Kube(kubeconfig=KUBECONFIG, bin_dir=bin_dir())
    finally:
        lab.down()


def pods(kube: Kube, component: str) -> list[dict[str, Any]]:
    """IronLB's pods of one component (operator | speaker), not terminating."""
    out = kube.kubectl("get", "pods", "-n", NS, "-l", f"app.kubernetes.io/component={component}", "-o", "json")
    return [p for p in json.loads(out.stdout)["items"] if not p["metadata"].get("deletionTimestamp")]


def proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, v in (line.split(":", 1) for line in lines)}


def caps(status: dict[str, str], field: str) -> set[int]:
    """Capability numbers set in CapEff / CapPrm / ..."""
    mask = int(status[field], 16)
    return {bit for bit in range(64) if mask >> bit & 1}


def service(name: str, pool: str, app: str = "") -> dict[str, Any]:
    """A LoadBalancer Service from POOL selecting app=APP (default: NAME)."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "annotations": {"ironlb.io/address-pool": pool}},
            "spec": {"type": "LoadBalancer", "selector": {"app": app or name},
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def vip_of(kube: Kube, name: str) -> str:
    """The Service's first ingress IP."""
    return wait_for(lambda: (kube.get("service", name).get("status", {}).get("loadBalancer", {})
                             .get("ingress") or [{}])[0].get("ip"), timeout=30, what=f"ingress of {name}")


def announcer(kube: Kube, name: str) -> str | None:
    """The node the Service's ironlb.io/Announced condition names, if it is True."""
    conds = kube.get("service", name).get("status", {}).get("conditions") or []
    cond = next((c for c in conds if c["type"] == "ironlb.io/Announced" and c["status"] == "True"), None)
    match = cond and re.search(r"node (node-\d+)", cond["message"])
    return match.group(1) if match else None


def test_every_ironlb_pod_is_ready_by_its_own_probes(real: Kube) -> None:
    operator, speakers = pods(real, "operator"), pods(real, "speaker")
    assert len(operator) == 1 and sorted(p["spec"]["nodeName"] for p in speakers) == NODES
    for pod in [*operator, *speakers]:
        assert reallab.pod_ready(pod), pod["status"]
        container = pod["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["port"] != container["ports"][0]["containerPort"]  # apart
        assert container["image"] == "lab.ironlb.io/ironlb:lab"
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


def hears_peers(pod: dict[str, Any]) -> str | None:
    """The status of a speaker Pod's HearsPeers condition (the speaker sets it when it starts or stops hearing)."""
    return next((c["status"] for c in pod["status"].get("conditions", []) if c["type"] == "ironlb.io/HearsPeers"),
                None)


def test_each_speaker_reports_on_its_own_pod_through_the_admission_policy(real: Kube) -> None:
    """The kubelet's projected token names the Pod: the chart's policy lets each speaker set its own Pod's
    HearsPeers condition (when it starts hearing peers; nothing periodic)."""
    real.kubectl("get", "validatingadmissionpolicy", "ironlb-speaker-pod-status", "ironlb-speaker-service-status")
    wait_for(lambda: sorted(p["spec"]["nodeName"] for p in pods(real, "speaker") if hears_peers(p) == "True") == NODES,
             timeout=30, what="every speaker's HearsPeers condition")


def test_speaker_has_exactly_its_capabilities_and_operator_nothing(real: Kube) -> None:
    for pod in pods(real, "speaker"):
        status = proc_status(reallab.container_pid(pod, "speaker"))
        assert status["Uid"].split()[0] == "0"
        assert caps(status, "CapEff") == caps(status, "CapPrm") == caps(status, "CapBnd") == {
            CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF}
        assert status["CapAmb"] == "0000000000000000"
    status = proc_status(reallab.container_pid(pods(real, "operator")[0], "operator"))
    assert status["Uid"].split()[0] == "65532"
    assert caps(status, "CapEff") == caps(status, "CapPrm") == caps(status, "CapBnd") == set()


def test_root_filesystems_are_read_only_and_tokens_projected(real: Kube) -> None:
    for component in ("operator", "speaker"):
        pod = pods(real, component)[0]
        pid = reallab.container_pid(pod, component)
        root = next(line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
                    if line.split()[4] == "/")
        assert "ro" in root[5].split(","), root
        # The token the kubelet projected (bound to this pod, expiring), not a legacy Secret token.
        token = subprocess.run(["nsenter", "-t", str(pid), "-m", "cat", f"{SA_DIR}/token"], check=True,
                               capture_output=True, text=True).stdout  # read in the container's own mounts
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["sub"] == f"system:serviceaccount:{NS}:ironlb-{component}"
        assert claims["kubernetes.io"]["pod"]["name"] == pod["metadata"]["name"]
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert any("serviceAccountToken" in src for v in volumes.values() for src in v.get("projected", {})
                   .get("sources", []))


@pytest.fixture(scope="module")
def web(real: Kube) -> Iterator[tuple[str, str]]:
    """A LoadBalancer Service whose pods (a real Deployment) run on the node that does not announce
    it; yield (VIP, announcing node)."""
    real.apply(*pool_manifests("real-pool", ["203.0.113.200/29"]))
    real.apply(service("web", "real-pool"))
    vip = vip_of(real, "web")
    announcing = elect(vip, NODES)
    assert announcing
    other = [n for n in NODES if n != announcing]
    reallab.deploy(real.bin_dir, "web", 1, other, 8080, "default")
    yield vip, announcing
    real.kubectl("delete", "service", "web", "--ignore-not-found")
    reallab.delete(real.bin_dir, "web")


def test_loadbalancer_service_answers_http_from_client(real: Kube, web: tuple[str, str]) -> None:
    vip, announcing = web
    body = wait_for(lambda: real.curl("client", f"http://{vip}/"), timeout=60, what="HTTP via the VIP")
    assert body.startswith("web-")
    assert wait_for(lambda: announcer(real, "web"), what="Announced condition") == announcing
    # Written by the speaker with its projected token: its RBAC suffices for Service status.
    # A first assignment is the operator's status write alone: no IPAllocated Event (--allocation-events moves).
    events = real.kubectl("get", "events", "-n", "default", "--field-selector", "involvedObject.name=web",
                          "-o", "json").stdout
    assert "IPAllocated" not in events


def metrics_token(real: Kube, name: str = "e2e-metrics-reader") -> str:
    """A token of a ServiceAccount bound to the chart's metrics-reader ClusterRole (as Prometheus' would be)."""
    real.kubectl("create", "serviceaccount", name, "-n", "default", check=False)
    real.kubectl("create", "clusterrolebinding", name, "--clusterrole=ironlb-metrics-reader",
                 f"--serviceaccount=default:{name}", check=False)
    return real.kubectl("create", "token", name, "-n", "default").stdout.strip()


def test_with_those_capabilities_the_kernel_answers_arp(real: Kube, web: tuple[str, str]) -> None:
    """Under the runtime's default seccomp profile and with only the chart's capabilities, the fast plane loads and
    attaches its tcx program: the announcing node's responder answers in the kernel, and its replies are counted."""
    vip, announcing = web
    node_ns, node_ip = node(int(announcing[-1])).netns, node(int(announcing[-1])).ipv4
    token = metrics_token(real)

    def gauge(name: str) -> float | None:  # scraped as Prometheus does: the node's address, a bearer token
        metrics = netns.run_in(node_ns, ["curl", "-sf", "-H", f"Authorization: Bearer {token}",
                                         f"http://{node_ip}:7473/metrics"], check=False).stdout
        return next((float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                     if line.startswith(name + "{") and 'interface="eth0"' in line), None)

    assert wait_for(lambda: gauge("ironlb_speaker_arp_in_kernel"), timeout=30, what="the kernel answering") == 1.0
    before = gauge("ironlb_speaker_replies_total") or 0.0
    real.exec("client", "ip", "neigh", "flush", "to", vip, check=True)  # the next connection must ask again
    wait_for(lambda: real.curl("client", f"http://{vip}/"), timeout=30, what="HTTP via the VIP")
    assert wait_for(lambda: (gauge("ironlb_speaker_replies_total") or 0.0) > before, timeout=10,
                    what="a reply counted")


def test_killing_the_announcing_node_moves_traffic(real: Kube, web: tuple[str, str]) -> None:
    vip, old = web
    wait_for(lambda: real.curl("client", f"http://{vip}/"), timeout=60, what="HTTP via the VIP")
    lab.kill_node(old)
    try:
        killed = time.monotonic()
        wait_for(lambda: real.curl("client", f"http://{vip}/", timeout=0.5), timeout=10, interval=0.05,
                 what="traffic after the announcing node was killed")
        took = time.monotonic() - killed
        assert took < 5, took
        assert not reallab.realnode.cgroups.pids(old)  # nothing of the node survived
        new = wait_for(lambda: (n := announcer(real, "web")) != old and n, what="new announcer reported")
        assert netns.link_mac(node(int(new[-1])).netns, "eth0") in real.exec(
            "client", "ip", "neigh", "show", vip, check=True).stdout
    finally:
        lab.revive_node(old)
    # The revived node's kubelet restarts its speaker, which takes the IP back.
    wait_for(lambda: announcer(real, "web") == old, timeout=90, what="announcement back on the revived node")
    reallab.wait_ironlb_ready(real.bin_dir, timeout=60)


def test_nodeport_forwarding_adds_net_admin_and_uninstall_leaves_nothing(real: Kube, web: tuple[str, str]) -> None:
    real.helm("upgrade", "ironlb", str(REPO / "charts" / "ironlb"), "-n", NS, "--reuse-values",
              "--set", "speaker.nodePortForwarding=true", timeout=120)
    wait_for(lambda: (s := pods(real, "speaker")) and len(s) == 2 and all(
        reallab.pod_ready(p) and _env(p).get("IRONLB_NODEPORT_FORWARDING") == "true" for p in s),
        timeout=150, interval=1, what="speakers rolled out with NodePort forwarding")
    for pod in pods(real, "speaker"):
        status = proc_status(reallab.container_pid(pod, "speaker"))
        assert caps(status, "CapEff") == caps(status, "CapPrm") == {CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF}
    # A forwarding: NodePort pool makes the announcing speaker program its nftables table.
    real.apply(*pool_manifests("fwd-pool", ["198.51.100.200/29"], forwarding="NodePort"))
    real.apply(service("fwd", "fwd-pool", app="web"))
    fwd_vip = vip_of(real, "fwd")
    assert wait_for(lambda: real.curl("client", f"http://{fwd_vip}/"), timeout=30, what="HTTP via NodePort forwarding")
    wait_for(lambda: any("table inet ironlb" in _tables(n) for n in NODES), timeout=30,
             what="the speakers' nftables table")

    # As docs/operations.md says: LoadBalancer Services go before IronLB does (their cleanup finalizer is its).
    real.kubectl("delete", "service", "fwd", "web", "--ignore-not-found", "--wait=true", timeout=90)
    real.helm("uninstall", "ironlb", "-n", NS, "--wait", timeout=120)
    wait_for(lambda: not real.kubectl("get", "pods", "-n", NS, "-o", "name").stdout.strip(), timeout=60,
             what="IronLB pods gone")
    for n in NODES:
        assert "table inet ironlb" not in _tables(n)
    kinds = ("all,serviceaccounts,secrets,configmaps,roles,rolebindings,leases,poddisruptionbudgets")

    def leftovers() -> list[str]:
        left = real.kubectl("get", kinds, "-n", NS, "-o", "name").stdout.split()
        return [o for o in left if "ironlb" in o and not o.endswith("kube-root-ca.crt")]

    # The heartbeat Secret the operator created is owned by its Deployment: the garbage collector
    # removes it a moment after Helm removes the Deployment.
    try:
        wait_for(lambda: not leftovers(), timeout=30, what="nothing of IronLB left")
    except AssertionError:
        assert leftovers() == []
    cluster = real.kubectl("get", "clusterroles,clusterrolebindings", "-o", "name").stdout.split()
    assert [o for o in cluster if "ironlb" in o] == []
    crds = real.kubectl("get", "crd", "-o", "name").stdout  # kept, as Helm keeps CRDs
    assert "ipaddresspools.ironlb.io" in crds


def _env(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env", [])}


def _tables(node_name: str) -> str:
    return netns.run_in(node(int(node_name[-1])).netns, ["nft", "list", "tables"]).stdout


def test_uninstall_with_a_loadbalancer_service_left_lets_it_and_its_namespace_be_deleted(real: Kube) -> None:
    """The chart's pre-delete hook stops the operator and takes the cleanup finalizer off the Services IronLB
    owns: a Service left behind, and its namespace, can still be deleted once IronLB is gone."""
    reallab.helm_install(real.bin_dir)
    real.kubectl("create", "namespace", "leftover")
    left = service("left", "real-pool")
    left["metadata"]["namespace"] = "leftover"
    real.apply(left)
    shown = wait_for(lambda: (s := real.get("service", "left", "leftover")).get("status", {}).get("loadBalancer", {})
                     .get("ingress") and "service.kubernetes.io/load-balancer-cleanup" in (
                         s["metadata"].get("finalizers") or ()) and s["status"]["loadBalancer"]["ingress"],
                     timeout=30, what="an IP and the cleanup finalizer")
    real.helm("uninstall", "ironlb", "-n", NS, "--wait", timeout=240)
    after = real.get("service", "left", "leftover")
    assert not after["metadata"].get("finalizers")
    assert after["status"]["loadBalancer"]["ingress"] == shown  # only the finalizer went
    left_of_hook = real.kubectl("get", "jobs,serviceaccounts,roles,rolebindings", "-n", NS, "-o", "name").stdout
    assert "release-finalizers" not in left_of_hook
    assert "release-finalizers" not in real.kubectl("get", "clusterroles,clusterrolebindings", "-o", "name").stdout
    started = time.monotonic()
    real.kubectl("delete", "service", "left", "-n", "leftover", "--wait=true", "--timeout=30s", timeout=40)
    real.kubectl("delete", "namespace", "leftover", "--wait=true", "--timeout=60s", timeout=70)
    assert time.monotonic() - started < 90
