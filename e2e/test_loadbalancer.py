"""The LoadBalancer path end to end: operator assigns, one speaker answers ARP/NDP, kube-proxy carries."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from e2e.lab import ironlb_procs, kubeproxy, lab, procs, workload
from e2e.lab.config import REPO, node_named
from e2e.lab.config import node as lab_node
from e2e.lab.state import load_state
from e2e.lab.tools import bin_dir
from e2e.testkit.testing import Kube, pool_manifest, pool_manifests, speaker_hears_all, wait_for
from ironlb.core.election import elect, score

pytestmark = pytest.mark.lab
POOL = "e2e-pool"
NODES = ("node-1", "node-2", "node-3")


def probe(kube: Kube, ip: str, wait: float = 1.0) -> list[dict]:
    """Replies to one ARP request / neighbour solicitation for IP sent from the client."""
    res = kube.exec("client", "env", f"PYTHONPATH={REPO / 'src'}:{REPO}", str(REPO / ".venv/bin/python"),
                    "-m", "e2e.probes.arpprobe", ip, "--wait", str(wait), check=True)
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def service(name: str, pool: str = POOL, app: str | None = None, **spec: object) -> dict:
    """A LoadBalancer Service from POOL selecting app=APP."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "annotations": {"ironlb.io/address-pool": pool}},
            "spec": {"type": "LoadBalancer", "selector": {"app": app or name},
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}], **spec}}


def announced(kube: Kube, name: str) -> dict | None:
    """The Service's ironlb.io/Announced condition (None until written)."""
    conds = kube.get("service", name).get("status", {}).get("conditions") or []
    return next((c for c in conds if c["type"] == "ironlb.io/Announced"), None)


def announcer(kube: Kube, name: str, status: str = "True", ip: str | None = None) -> str:
    """Wait for the condition; return the node named in it (for IP, when given: a dual-stack
    Service's two IPs may be announced by two nodes, and the message names both)."""
    seen: list[dict | None] = [None]  # the last condition read, for the failure message

    def settled() -> dict | None:
        seen[0] = announced(kube, name)
        return seen[0] if seen[0] and seen[0]["status"] == status else None

    try:
        # Pods becoming ready and the EndpointSlice controller's batching come first: on a loaded
        # machine that takes longer than a wait for the speaker alone.
        cond = wait_for(settled, timeout=45, what=f"{name} announced")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last condition: {seen[0]}") from None
    match = re.search((re.escape(ip) + " from " if ip else "") + r"node (node-\d+)", cond["message"])
    assert match, cond
    return match.group(1)


def vip_of(kube: Kube, name: str) -> str:
    """The Service's first ingress IP."""
    return wait_for(lambda: (kube.get("service", name).get("status", {}).get("loadBalancer", {})
                             .get("ingress") or [{}])[0].get("ip"), what=f"ingress of {name}")


def settled_election(kube: Kube) -> None:
    """Every speaker has joined and counts every node alive: a node the last test revived is back in
    the election, so the announcer a test reads now is the one the next kill moves away from."""
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=60, what="every speaker in the election")


@pytest.fixture(scope="module", autouse=True)
def pool(kube: Kube) -> Iterator[None]:
    """A pool announced from every node (once every speaker has joined and hears every peer: not
    every test here takes `web`, which waits for that too)."""
    settled_election(kube)
    kube.apply(*pool_manifests(POOL, ["203.0.113.64/27", "2001:db8:ffff::100/120"]))
    yield
    kube.kubectl("delete", "l2advertisement", POOL, "--ignore-not-found")
    kube.kubectl("delete", "ipaddresspool", POOL, "--ignore-not-found")


@pytest.fixture
def web(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A workload with a pod on every node and a LoadBalancer Service of the same name."""
    name = request.node.name.replace("_", "-")[5:30].strip("-")
    settled_election(kube)
    kube.deploy(name, replicas=3, nodes=list(NODES))
    kube.apply(service(name))
    yield name
    kube.kubectl("delete", "service", name, "--wait=false")
    kube.undeploy(name)


def test_one_arp_reply_from_elected_node_and_traffic_flows(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    node = announcer(kube, web)
    assert node == elect(vip, NODES)  # every speaker computes the same hash election
    replies = wait_for(lambda: probe(kube, vip), what="ARP reply")
    assert len(replies) == 1, replies
    assert replies[0]["mac"] == lab.node_mac(node)
    assert wait_for(lambda: kube.curl("client", f"http://{vip}/"), what="curl VIP").startswith(web)
    svc = kube.get("service", web)
    assert kube.curl("client", f"http://{svc['spec']['clusterIP']}/", timeout=1) is None
    assert kube.curl("client", f"http://192.0.2.12:{svc['spec']['ports'][0]['nodePort']}/").startswith(web)
    assert probe(kube, "203.0.113.95", wait=0.5) == []  # unassigned: nobody answers


@contextmanager
def announcer_killed(kube: Kube, web: str, vip: str, old: str) -> Iterator[None]:
    """Kill node OLD (announcing VIP of WEB), check traffic resumes within 5 s, revive it on exit."""
    # Its pod is gone first, so the surviving nodes' pods serve every request after the kill.
    workload.set_ready(f"{web}-{NODES.index(old)}", False)
    lab.kill_node(old)
    try:
        killed = time.monotonic()
        wait_for(lambda: kube.curl("client", f"http://{vip}/", timeout=0.5), timeout=10, interval=0.05,
                 what="traffic after failover")
        assert time.monotonic() - killed < 5
        yield
    finally:
        lab.revive_node(old)
        workload.set_ready(f"{web}-{NODES.index(old)}", True)


def test_node_failure_moves_the_ip(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    old = announcer(kube, web)
    wait_for(lambda: kube.curl("client", f"http://{vip}/"), what="curl VIP")
    with announcer_killed(kube, web, vip, old):
        new = wait_for(lambda: (n := announcer(kube, web)) != old and n, what="new announcer reported")
        assert new == elect(vip, [n for n in NODES if n != old])
        neigh = kube.exec("client", "ip", "neigh", "show", vip, check=True).stdout
        assert lab.node_mac(new) in neigh  # the gratuitous ARP moved the client's entry
    # Back to the hash winner once the node is alive again, and still exactly one answer.
    wait_for(lambda: announcer(kube, web) == old, timeout=20, what="announcement back on the revived node")
    assert [r["mac"] for r in wait_for(lambda: probe(kube, vip), what="ARP")] == [lab.node_mac(old)]


def test_a_restarted_speaker_takes_its_ips_back_only_once_kube_proxy_has_synced(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    old = announcer(kube, web)
    host, ipv6 = lab_node(int(old[-1])), load_state().ipv6
    # Without a restart hold, so that its IPs move when it stops (with one, a peer answers for them with this
    # node's MAC until it is back: test_speaker_resilience).
    ironlb_procs.restart("speaker", old, env={"IRONLB_RESTART_HOLD": "0"})
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=40, what="the speaker back and joined")
    procs.stop(kubeproxy.proc_name(host))
    try:
        ironlb_procs.restart("speaker", old)
        # The old speaker said goodbye; the new one stays out of the election while kube-proxy is down.
        new = wait_for(lambda: (a := announcer(kube, web)) != old and a, what="IP taken over")
        time.sleep(3)
        assert announcer(kube, web) == new
        assert kube.curl("client", f"http://{vip}/")
    finally:
        kubeproxy.start(host, bin_dir(), ipv6)
    wait_for(lambda: announcer(kube, web) == old, timeout=20, what="IP back once kube-proxy has synced")
    assert kube.curl("client", f"http://{vip}/")


def test_external_traffic_policy_local_announces_from_pod_nodes(kube: Kube) -> None:
    kube.deploy("local", replicas=1, nodes=["node-2"])
    kube.apply(service("local", externalTrafficPolicy="Local"))
    try:
        vip = vip_of(kube, "local")
        assert announcer(kube, "local") == "node-2"
        assert [r["mac"] for r in wait_for(lambda: probe(kube, vip), what="ARP")] == [lab.node_mac("node-2")]
        assert wait_for(lambda: kube.curl("client", f"http://{vip}/"), what="curl") == "local-0"
    finally:
        kube.kubectl("delete", "service", "local", "--wait=false")
        kube.undeploy("local")


def test_a_local_services_ip_stays_on_its_node_while_other_nodes_pods_become_ready(kube: Kube) -> None:
    """Pods becoming ready one after another, the node the hash prefers last first: the IP stays where it is
    announced (every move cuts the connections through it), until that node's pod is no longer ready."""
    pods = dict(zip(NODES, kube.deploy("sticky", replicas=3, nodes=list(NODES)), strict=True))
    for pod in pods.values():
        workload.set_ready(pod, False)
    kube.apply(service("sticky", externalTrafficPolicy="Local"))
    try:
        vip = vip_of(kube, "sticky")
        order = sorted(NODES, key=lambda n: score(n, vip))
        workload.set_ready(pods[order[-1]], True)
        wait_for(lambda: announcer(kube, "sticky") == order[-1], timeout=30, what=f"announced from {order[-1]}")
        for node in reversed(order[:-1]):  # the hash's favourite last
            workload.set_ready(pods[node], True)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                assert announcer(kube, "sticky") == order[-1], f"moved when {node}'s pod became ready"
                time.sleep(0.2)
        assert [r["mac"] for r in probe(kube, vip)] == [lab.node_mac(order[-1])]
        workload.set_ready(pods[order[-1]], False)  # its pod goes: the hash decides among the others again
        wait_for(lambda: announcer(kube, "sticky") == order[0], timeout=30, what=f"moved to {order[0]}")
    finally:
        kube.kubectl("delete", "service", "sticky", "--wait=false")
        kube.undeploy("sticky")


def test_node_selector_and_interfaces_restrict(kube: Kube) -> None:
    kube.apply(*pool_manifests("e2e-sel", ["203.0.113.96/28"], advertisement={
        "interfaces": ["nosuchif0"], "nodeSelectors": [{"matchLabels": {"kubernetes.io/hostname": "node-3"}}]}))
    kube.deploy("sel", replicas=3, nodes=list(NODES))
    kube.apply(service("sel", pool="e2e-sel"))
    try:
        vip = vip_of(kube, "sel")
        assert announcer(kube, "sel") == "node-3"
        time.sleep(0.5)
        assert probe(kube, vip) == []  # node-3 has no interface named nosuchif0: nothing answers
        kube.kubectl("patch", "l2advertisement", "e2e-sel", "--type=merge", "-p", '{"spec":{"interfaces":["eth0"]}}')
        replies = wait_for(lambda: probe(kube, vip), what="ARP on eth0")
        assert [r["mac"] for r in replies] == [lab.node_mac("node-3")]
    finally:
        kube.kubectl("delete", "service", "sel", "--wait=false")
        kube.undeploy("sel")
        kube.kubectl("delete", "l2advertisement", "e2e-sel", "--ignore-not-found")
        kube.kubectl("delete", "ipaddresspool", "e2e-sel", "--ignore-not-found")


def test_pool_without_advertisement_is_reported(kube: Kube) -> None:
    kube.apply(pool_manifest("e2e-silent", ["203.0.113.112/30"], autoAssign=False))
    kube.deploy("silent", replicas=1, nodes=["node-1"])
    kube.apply(service("silent", pool="e2e-silent"))
    try:
        vip = vip_of(kube, "silent")
        cond = wait_for(lambda: (c := announced(kube, "silent")) and c["status"] == "False" and c,
                        what="NotAnnounced condition")
        assert cond["reason"] == "NoL2Advertisement" and "L2Advertisement" in cond["message"]
        events = json.loads(kube.kubectl("get", "events", "-o", "json", "--field-selector",
                                         "involvedObject.name=silent,reason=NotAnnounced").stdout)["items"]
        assert events and events[0]["type"] == "Warning"
        assert probe(kube, vip, wait=0.5) == []
    finally:
        kube.kubectl("delete", "service", "silent", "--wait=false")
        kube.undeploy("silent")
        kube.kubectl("delete", "ipaddresspool", "e2e-silent", "--ignore-not-found")


def test_ipv6_neighbour_discovery(kube: Kube) -> None:
    kube.deploy("v6", replicas=2, nodes=["node-1", "node-3"])
    kube.apply(service("v6", ipFamilies=["IPv6"], ipFamilyPolicy="SingleStack"))
    try:
        vip = vip_of(kube, "v6")
        assert ":" in vip
        node = announcer(kube, "v6")
        replies = wait_for(lambda: probe(kube, vip), what="neighbour advertisement")
        assert [r["mac"] for r in replies] == [lab.node_mac(node)]
        assert wait_for(lambda: kube.curl("client", f"http://[{vip}]/"), what="curl IPv6 VIP").startswith("v6-")
    finally:
        kube.kubectl("delete", "service", "v6", "--wait=false")
        kube.undeploy("v6")


def test_vip_keeps_answering_while_api_server_is_down(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    announcer(kube, web)
    wait_for(lambda: kube.curl("client", f"http://{vip}/"), what="curl VIP")
    lab.stop_apiserver()
    try:
        failures = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            failures += kube.curl("client", f"http://{vip}/", timeout=1) is None
            kube.exec("client", "ip", "neigh", "flush", "dev", "eth0")  # force fresh ARP each round
            time.sleep(2)
        assert failures == 0
    finally:
        lab.start_apiserver()
        wait_cluster_recovered(kube)


def wait_cluster_recovered(kube: Kube) -> None:
    """After an API outage, clients back off for up to ~30 s: wait until a new Service works everywhere."""
    kube.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "recovered", "namespace": "default"},
                "spec": {"type": "NodePort", "selector": {"app": "recovered"},
                         "ports": [{"port": 80, "targetPort": 8080}]}})
    kube.deploy("recovered", replicas=1, nodes=["node-1"])
    try:
        port = kube.get("service", "recovered")["spec"]["ports"][0]["nodePort"]
        for name in NODES:
            ip = node_named(name).ipv4
            try:
                wait_for(lambda ip=ip: kube.curl("client", f"http://{ip}:{port}/"), timeout=120, interval=1,
                         what=f"NodePort on {ip} after the API outage")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; {kubeproxy.explain(node_named(name), port)}") from None
    finally:
        kube.kubectl("delete", "service", "recovered", "--wait=false")
        kube.undeploy("recovered")
