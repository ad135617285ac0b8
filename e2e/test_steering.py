"""Steering around dead nodes, in the lab: a node's death costs the client well under a second of new
connections, though Kubernetes still lists its pod as ready; what only looks like a death (a frozen speaker,
heartbeats blocked between the speakers) takes no endpoint out; a revived node's pod gets its share back.

A Deployment with a pod on every node behind a `Cluster` Service; `e2e.probes.connprobe` opens new
connections from the client at 50 Hz throughout. The lab's nodes have no kubelet, so nothing marks the dead
node's pod not ready: every failure after the first second would be one that steering missed.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from e2e.lab import lab, procs
from e2e.lab.config import REPO
from e2e.lab.config import node as lab_node
from e2e.testkit.connections import Recording, all_connections_ok_s, failed_after, parse
from e2e.testkit.testing import Kube, pool_manifests, speaker_hears_all, wait_for
from ironlb.core.election import elect

pytestmark = pytest.mark.lab
NAME = "steer"
NODES = ("node-1", "node-2", "node-3")
PROBE = [str(REPO / ".venv/bin/python"), "-m", "e2e.probes.connprobe"]


@pytest.fixture(scope="module")
def vip(kube: Kube) -> Iterator[str]:
    """A Cluster Service with a pod on every node; its VIP."""
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=60, what="every speaker in the election")
    kube.apply(*pool_manifests(NAME, ["203.0.113.244/30"]))
    kube.deploy(NAME, replicas=3, nodes=list(NODES))
    kube.apply({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": NAME, "namespace": "default", "annotations": {"ironlb.io/address-pool": NAME}},
                "spec": {"type": "LoadBalancer", "selector": {"app": NAME},
                         "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    ip = wait_for(lambda: (kube.get("service", NAME).get("status", {}).get("loadBalancer", {})
                           .get("ingress") or [{}])[0].get("ip"), what="VIP")
    wait_for(lambda: len(pods_answering(ip, 3.0)) == 3, timeout=60, what="every pod answering through the VIP")
    yield ip
    kube.kubectl("delete", "service", NAME, "--wait=false")
    kube.undeploy(NAME)
    kube.kubectl("delete", "l2advertisement,ipaddresspool", NAME, "--ignore-not-found")


def probe(vip: str, seconds: float) -> subprocess.Popen[str]:
    """connprobe from the client for SECONDS: new connections only."""
    return subprocess.Popen(["ip", "netns", "exec", "ilb-client", *PROBE, vip, "--duration", str(seconds),
                             "--long", "0"], stdout=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": f"{REPO}/src:{REPO}"})


def recorded(proc: subprocess.Popen[str], seconds: float) -> Recording:
    """What the probe saw, once it ends."""
    out, _ = proc.communicate(timeout=seconds + 30)
    return parse(out.splitlines())


def pods_answering(vip: str, seconds: float) -> set[str]:
    """The pods that answered new connections to VIP over SECONDS."""
    return {a.pod for a in recorded(probe(vip, seconds), seconds).attempts if a.ok and a.pod}


def settled(kube: Kube, vip: str) -> None:
    """Wait for a steady state: the VIP back on the node the election gives it with every node alive (a node the
    last test revived takes its VIP back once its kube-proxy has synced: a move, which fails a few connections),
    then two seconds of new connections, every one answered, by every pod."""
    wait_for(lambda: announcer(kube) == elect(vip, NODES), timeout=60, what="the VIP on its elected node")

    def clean() -> bool:
        rec = recorded(probe(vip, 2.0), 2.0)
        return all(a.ok for a in rec.attempts) and len({a.pod for a in rec.attempts}) == len(NODES)
    wait_for(clean, timeout=90, interval=1.0, what="every new connection answered, by every pod")


def announcer(kube: Kube) -> str:
    """The node named in the Service's Announced condition (waited for)."""
    def named() -> str | None:
        conds = kube.get("service", NAME).get("status", {}).get("conditions") or []
        cond = next((c for c in conds if c["type"] == "ironlb.io/Announced" and c["status"] == "True"), None)
        found = re.search(r"node (node-\d+)", cond["message"]) if cond else None
        return found.group(1) if found else None
    return wait_for(named, timeout=30, what="the Service announced")


def pod_on(node: str) -> str:
    """The name of this workload's pod on NODE."""
    return f"{NAME}-{NODES.index(node)}"


def gauge(kube: Kube, node: str, name: str) -> float:
    """Sum of a metric's samples on NODE's speaker."""
    text = kube.exec(node, "curl", "-s", "-m", "1", "http://127.0.0.1:7473/metrics").stdout
    return sum(float(m) for m in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def steered(kube: Kube, node: str) -> float:
    """Services NODE steers around dead nodes now."""
    text = kube.exec(node, "curl", "-s", "-m", "1", "http://127.0.0.1:7473/metrics").stdout
    found = re.search(r'^ironlb_speaker_steering_services\{reason="SteeredAroundDeadNodes"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("victim", ["announcer", "another node"])
def test_a_dead_nodes_pod_takes_no_new_connection_after_the_first_second(kube: Kube, vip: str, victim: str) -> None:
    settled(kube, vip)
    first = announcer(kube)
    node = first if victim == "announcer" else next(n for n in NODES if n != first)
    running = probe(vip, 10.0)
    time.sleep(2.0)
    killed = lab.kill_node(node)
    rec = recorded(running, 10.0)
    try:
        failed = failed_after(rec, killed)
        late = [a for a in failed if a.start > killed + 1.0]
        print({"victim": victim, "failed": len(failed), "all_connections_ok_s": all_connections_ok_s(rec, killed)})
        print(timeline(rec, killed))
        assert all_connections_ok_s(rec, killed) <= 1.0, failed
        assert not late, late
        after = {a.pod for a in rec.attempts if a.ok and a.start > killed + 1.0}
        assert after == {pod_on(n) for n in NODES if n != node}, after  # both live pods, never the dead one
        steering = announcer(kube)
        assert steered(kube, steering) == 1.0  # the node now announcing says what it does
    finally:
        lab.revive_node(node)
    wait_for(lambda: speaker_hears_all(kube, node), timeout=60, what=f"{node}'s speaker back in the mesh")
    # Back in the mesh: its pod takes new connections again at once (nobody in Kubernetes took it out).
    wait_for(lambda: pod_on(node) in pods_answering(vip, 2.0), timeout=30, what=f"{node}'s pod answering again")
    wait_for(lambda: all(steered(kube, n) == 0.0 for n in NODES), timeout=10, what="no steering left")


def timeline(rec: Recording, kill: float, width: float = 0.5) -> list[tuple[float, dict[str, int]]]:
    """Answers by pod (and failures) in WIDTH-second slices around KILL: what the failure message shows."""
    slices: dict[float, dict[str, int]] = {}
    for a in rec.attempts:
        at = round((a.start - kill) // width * width, 1)
        key = a.pod if a.ok else f"failed-{a.failure.value if a.failure else '?'}"
        slices.setdefault(at, {}).setdefault(key or "?", 0)
        slices[at][key or "?"] += 1
    return sorted(slices.items())


@contextmanager
def heartbeats_blocked(node: str) -> Iterator[None]:
    """NODE's speaker neither hears nor reaches its peers (heartbeats dropped both ways); the node serves on."""
    netns = lab_node(int(node.rsplit("-", 1)[1])).netns
    rules = ("table inet e2e_block {\n chain input { type filter hook input priority -300; udp dport 7946 drop; }\n"
             " chain output { type filter hook output priority -300; udp dport 7946 drop; }\n}\n")
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=rules, text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "netns", "exec", netns, "nft", "delete", "table", "inet", "e2e_block"], check=True)


@contextmanager
def speaker_frozen(node: str) -> Iterator[None]:
    """NODE's speaker (both processes) stopped in its tracks; resumed afterwards."""
    assert procs.signal_all(f"speaker-{node}", signal.SIGSTOP)
    try:
        yield
    finally:
        procs.signal_all(f"speaker-{node}", signal.SIGCONT)


@pytest.mark.parametrize("fault", [speaker_frozen, heartbeats_blocked], ids=["frozen speaker", "heartbeats blocked"])
def test_what_only_looks_like_a_death_takes_no_endpoint_out(kube: Kube, vip: str, fault: object) -> None:
    """The majority declares the node dead and a blocked minority declares the majority dead; every host still
    answers, so nobody's endpoints are skipped and every pod keeps taking new connections."""
    settled(kube, vip)
    first = announcer(kube)
    node = next(n for n in NODES if n != first)
    running = probe(vip, 8.0)
    time.sleep(1.0)
    with fault(node):  # type: ignore[operator]
        time.sleep(1.0)  # declared dead by now, and probed
        # every node: the majority, and the cut-off node itself (a frozen one answers nothing: 0)
        confirmed = {n: gauge(kube, n, "ironlb_speaker_confirmed_dead_nodes") for n in NODES}
        time.sleep(4.0)
    rec = recorded(running, 8.0)
    assert confirmed == dict.fromkeys(confirmed, 0.0), confirmed
    during = [a for a in rec.attempts if a.ok and a.start > rec.attempts[0].start + 2.0]
    assert pod_on(node) in {a.pod for a in during}  # its pod kept its share
    wait_for(lambda: speaker_hears_all(kube, node), timeout=60, what=f"{node}'s speaker back in the mesh")
