"""BGP drains as the drain test and `benchmarks.bgp` drive them: a Local Service with one pod per node announced by
every node, a client behind the router probing it over fixed flows (e2e.probes.flowprobe), and the three ways a
node goes: its speaker's SIGTERM, a cordon, and `kubectl drain` (with the kubelet's part done here, since a
lightweight node has none: an evicted pod serves while terminating, then its process stops and its object goes).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from e2e.lab import bgp, frr, ironlb_procs, lab, procs, workload
from e2e.lab.config import REPO, NodeAddr
from e2e.lab.state import load_state
from e2e.testkit.testing import Kube, wait_for

GROUP = "ironlb.io/v1beta1"
POOL = "bgp-drain"
ADDRESSES = "198.51.100.60/30"  # in no other test's pool
PEER = "drain-router"
APP = "drainweb"
FLOWS, RATE_HZ = 128, 200.0
TERMINATING_S = 2.0  # how long an evicted pod serves before its process stops (as a workload that drains)
SPEAKER_STOP_S = 30.0  # the speaker's drain is bounded by --bgp-drain-seconds (10 s) and a settle time


def bgp_manifests(peer: str, profile: str | None, pool: str, addresses: str,
                  hold_time: str = "9s", timers: bgp.Bfd = bgp.DEFAULT_BFD) -> list[dict[str, Any]]:
    """A BFDProfile PROFILE (TIMERS; None: no BFD), a BGPPeer named PEER towards the lab's router with it, POOL
    with ADDRESSES (not auto-assigned) and its BGPAdvertisement."""
    peer_spec = {"myASN": bgp.NODE_ASN, "peerASN": bgp.ROUTER_ASN, "peerAddress": bgp.ROUTER_IP_V4,
                 "holdTime": hold_time, "connectTime": "1s"} | ({"bfdProfile": profile} if profile else {})
    bfd = [{"apiVersion": GROUP, "kind": "BFDProfile", "metadata": {"name": profile},
            "spec": {"receiveInterval": timers.interval_ms, "transmitInterval": timers.interval_ms,
                     "detectMultiplier": timers.multiplier}}] if profile else []
    return [
        *bfd,
        {"apiVersion": GROUP, "kind": "BGPPeer", "metadata": {"name": peer}, "spec": peer_spec},
        {"apiVersion": GROUP, "kind": "IPAddressPool", "metadata": {"name": pool},
         "spec": {"addresses": [addresses], "autoAssign": False}},
        {"apiVersion": GROUP, "kind": "BGPAdvertisement", "metadata": {"name": pool},
         "spec": {"ipAddressPools": [pool]}},
    ]


def lb_service(app: str, pool: str, policy: str) -> dict[str, Any]:
    """A LoadBalancer Service APP from POOL over the app's pods, with externalTrafficPolicy POLICY."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": app, "namespace": "default", "annotations": {"ironlb.io/address-pool": pool}},
            "spec": {"type": "LoadBalancer", "selector": {"app": app}, "externalTrafficPolicy": policy,
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def service_ip(kube: Kube, name: str, timeout: float = 60) -> str:
    """The first ingress IP the Service NAME in default was given, once it has one."""
    return wait_for(lambda: ((kube.get("service", name).get("status", {}).get("loadBalancer") or {})
                             .get("ingress") or [{}])[0].get("ip"), timeout=timeout, what=f"{name}'s IP")


def service() -> dict[str, Any]:
    """A Local Service from POOL: a node carries a flow only to its own pod, so the answer names the node."""
    return lb_service(APP, POOL, "Local")


def restart_speaker(node: NodeAddr) -> None:
    """NODE's speaker stopped by SIGTERM (it drains first) and started again, as a rolling update does."""
    procs.stop(f"speaker-{node.name}", timeout=SPEAKER_STOP_S)
    ironlb_procs.start_speaker(node.name)


def stop_speakers(nodes: list[NodeAddr]) -> None:
    """Stop every speaker at once (in BGP mode each drains its routes first): SIGTERM to all, then wait."""
    names = [f"speaker-{n.name}" for n in nodes]
    entries = [e for name in names if (e := procs.running(name).get(name)) is not None]
    for entry in entries:
        with contextlib.suppress(ProcessLookupError):
            os.kill(entry.pid, signal.SIGTERM)
    with contextlib.suppress(AssertionError):  # one that does not stop in time is killed by procs.stop
        wait_for(lambda: not any(procs.is_running(e) for e in entries), timeout=SPEAKER_STOP_S,
                 what="the speakers stopped")
    for name in names:
        procs.stop(name)


def restart_speakers(nodes: list[NodeAddr]) -> None:
    """Each speaker started again, told its FRR's directory if the lab has its router now."""
    stop_speakers(nodes)
    for n in nodes:
        ironlb_procs.start_speaker(n.name)


def leave_bgp_mode() -> None:
    """Undo `lab.attach_bgp`: the speakers drain while their FRR runs, the router, bgpclient and the nodes' FRR
    go, and the speakers start again without BGP mode."""
    stop_speakers(load_state().live_nodes)
    lab.detach_bgp()
    restart_speakers(load_state().live_nodes)


@contextmanager
def bgp_lab(kube: Kube, manifests: list[dict[str, Any]], established: bool = True) -> Iterator[list[NodeAddr]]:
    """The lab with its router, IronLB's speakers in BGP mode and MANIFESTS (a BGPPeer towards the router and
    what goes with it) applied, once every session is Established (ESTABLISHED; else at once: MANIFESTS without a
    peer); all undone afterwards."""
    attached = lab.attach_bgp()
    restart_speakers(load_state().live_nodes)  # in BGP mode, whatever they ran as before
    kube.apply(*manifests)
    try:
        nodes = load_state().live_nodes
        if established:
            wait_for(lambda: all(bgp.router_sessions().get(n.ipv4) == "Established" for n in nodes), timeout=60,
                     what="every speaker's session Established on the router")
        yield nodes
    finally:
        for m in reversed(manifests):
            kube.kubectl("delete", m["kind"].lower(), m["metadata"]["name"], "--ignore-not-found", "--wait=false")
        if attached:
            leave_bgp_mode()


@contextmanager
def served_by_every_node(kube: Kube, nodes: list[NodeAddr]) -> Iterator[str]:
    """One pod per node and the Local Service over them; its VIP, once the router routes it via every node."""
    kube.deploy(APP, replicas=len(nodes), nodes=[n.name for n in nodes])
    kube.apply(service())
    try:
        ip = wait_for(lambda: next((i["ip"] for i in (kube.get("service", APP).get("status", {})
                                                      .get("loadBalancer") or {}).get("ingress") or []
                                    if ":" not in i.get("ip", "")), None), timeout=30, what=f"{APP}'s IP")
        wait_for_next_hops(ip, nodes)
        wait_for(lambda: _answers_everywhere(ip, len(nodes)), timeout=30, interval=0.5,
                 what=f"{ip} answering every probe, from every node's pod")
        yield ip
    finally:
        kube.kubectl("delete", "service", APP, "--ignore-not-found", "--wait=false")
        kube.undeploy(APP)


def _answers_everywhere(ip: str, pods: int) -> bool:
    """A short probe run lost nothing and was answered by PODS pods. A node announces a new Service as soon as its
    endpoints are ready, and its kube-proxy may still reject it for up to its sync period: the drain's figures
    start after that."""
    with probing(ip, 1.0, flows=16, rate=50) as run:
        pass
    seen = run.result
    return seen is not None and not seen.lost and len({p for c in seen.pods.values() for p in c}) == pods


def wait_for_next_hops(ip: str, nodes: list[NodeAddr], timeout: float = 45) -> None:
    """Until the router's FIB routes IP via exactly NODES."""
    wanted = {n.ipv4 for n in nodes}
    wait_for(lambda: bgp.router_next_hops(f"{ip}/32") == wanted, timeout=timeout, interval=0.1,
             what=f"{ip} via {sorted(wanted)} at the router")


@dataclass
class Probed:
    """What the client saw over one run of the flow probe."""

    sent: int
    answered: int
    lost: list[dict[str, Any]]
    first_pod: dict[int, str]
    pods: dict[int, dict[str, int]] = field(default_factory=dict)

    def share_by_node(self, pod_node: dict[str, str]) -> dict[str, float]:
        """The share of flows each node carried at first (a flow's first answer names its node's pod)."""
        counted = Counter(pod_node.get(pod, "?") for pod in self.first_pod.values())
        return {node: counted.get(node, 0) / max(1, len(self.first_pod)) for node in sorted(set(pod_node.values()))}


class ProbeRun:
    """The flow probe running in bgpclient; `result` once it has ended."""

    def __init__(self, ip: str, duration: float, flows: int, rate: float) -> None:
        self.duration = duration
        cmd = procs.netns_cmd(bgp.BGPCLIENT_NS, [sys.executable, "-m", "e2e.probes.flowprobe", ip, "--flows",
                                                 str(flows), "--rate", str(rate), "--duration", str(duration)])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(REPO)})
        self.result: Probed | None = None

    def stop(self) -> None:
        """End the probe now (it prints its tally)."""
        if self.proc.poll() is None:
            self.proc.terminate()

    def collect(self) -> Probed:
        """Wait for the probe's end (bounded) and read its tally."""
        try:
            stdout, _ = self.proc.communicate(timeout=self.duration + 30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        tally = json.loads(stdout.strip().splitlines()[-1])
        self.result = Probed(tally["sent"], tally["answered"], tally["lost"],
                             {int(k): v for k, v in tally["first_pod"].items()},
                             {int(k): v for k, v in tally["pods"].items()})
        return self.result


@contextmanager
def probing(ip: str, duration: float, flows: int = FLOWS, rate: float = RATE_HZ) -> Iterator[ProbeRun]:
    """The flow probe from bgpclient for DURATION seconds at most; its `result` once the block has ended."""
    run = ProbeRun(ip, duration, flows, rate)
    try:
        yield run
    except BaseException:
        run.stop()
        raise
    finally:
        run.collect()


def pod_nodes() -> dict[str, str]:
    """Pod name -> its node, for the lab's pods of APP."""
    return {p: i.node for p, i in load_state().pods.items() if i.app == APP}


def cordon(kube: Kube, node: NodeAddr, on: bool = True) -> None:
    """kubectl cordon (ON) or uncordon NODE."""
    kube.kubectl("cordon" if on else "uncordon", node.name)


def kubectl_drain(kube: Kube, node: NodeAddr, timeout: float = 60) -> None:
    """`kubectl drain` of NODE's APP pods (cordon, then evictions), with a kubelet's part for the evicted pods."""
    kubelet = threading.Thread(target=_terminate_evicted, args=(kube, node, timeout), daemon=True)
    kubelet.start()
    kube.kubectl("drain", node.name, f"--pod-selector=app={APP}", "--ignore-daemonsets", "--force", "--grace-period=5",
                 f"--timeout={int(timeout)}s", timeout=timeout + 10)
    kubelet.join(timeout=5)


def _terminate_evicted(kube: Kube, node: NodeAddr, timeout: float) -> None:
    """The kubelet's part: each evicted pod of APP on NODE serves TERMINATING_S more, then stops and is deleted."""
    deadline = time.monotonic() + timeout
    mine = [p for p, n in pod_nodes().items() if n == node.name]
    while mine and time.monotonic() < deadline:
        for pod in list(mine):
            res = kube.kubectl("get", "pod", pod, "-o", "json", check=False)
            if res.returncode != 0 or json.loads(res.stdout)["metadata"].get("deletionTimestamp"):
                time.sleep(TERMINATING_S)
                workload.remove_pod(pod)
                mine.remove(pod)
        time.sleep(0.1)


def timed(step: Callable[[], None]) -> float:
    """Seconds STEP took."""
    started = time.monotonic()
    step()
    return time.monotonic() - started


class GshutWatch:
    """Whether the router ever held NODE's path to IP with the GRACEFUL_SHUTDOWN community (polled in a thread)."""

    def __init__(self, ip: str, node: NodeAddr) -> None:
        self.seen = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ip, node.ipv4), daemon=True)
        self._thread.start()

    def _run(self, ip: str, via: str) -> None:
        while not self._stop.is_set() and not self.seen:
            out = frr.vtysh(bgp.ROUTER_DIR, f"show bgp ipv4 unicast {ip}/32 json", check=False).stdout
            paths = json.loads(out).get("paths", []) if out.strip().startswith("{") else []
            self.seen = any("gracefulShutdown" in (p.get("community") or {}).get("list", [])
                            and any(h.get("ip") == via for h in p.get("nexthops", [])) for p in paths)
            self._stop.wait(0.05)

    def stop(self) -> bool:
        """Stop polling; whether it was seen."""
        self._stop.set()
        self._thread.join(5)
        return self.seen
