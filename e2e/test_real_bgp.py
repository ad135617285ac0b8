"""BGP mode on real nodes (`up --kubelet --bgp`): the speaker Pods' frr container, from the chart, is the FRR that
peers with the lab's router. What only real nodes show: the container starts with the chart's capabilities and no
more, its daemons establish from each node, a Service's IP is an ECMP route over every node that bgpclient reaches
through a real pod, a speaker container's restart resets no session, and the frr container's restart is reported
by the speaker, which gives the new daemons the whole config again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch

from e2e.lab import bgp, frr, lab, reallab
from e2e.lab.config import KUBECONFIG
from e2e.lab.state import load_state
from e2e.lab.tools import bin_dir
from e2e.test_real_nodes import caps, pods, proc_status
from e2e.testkit.bgpdrain import bgp_manifests, lb_service
from e2e.testkit.testing import Kube, wait_for
from ironlb.api.bgp_status import BFDState, NodeBGPStatus, SessionState
from ironlb.api.reasons import BGPDaemonReason, ConditionType

pytestmark = [pytest.mark.lab, pytest.mark.kubelet]
NODES = 3
PEER = "lab-router"
POOL = "real-bgp"
ADDRESSES = "203.0.113.236/30"  # in no other test's pool
APP = "bgpweb"
GROUP, VERSION = "ironlb.io", "v1beta1"
# Linux's capability numbers of the names a securityContext adds.
CAPABILITY = {"SETGID": 6, "SETUID": 7, "NET_BIND_SERVICE": 10, "NET_ADMIN": 12, "NET_RAW": 13, "SYS_ADMIN": 21}
DAEMONS = ("zebra", "bgpd", "bfdd")


@pytest.fixture(scope="module")
def real() -> Iterator[Kube]:
    """Three real nodes, the router and bgpclient, IronLB installed by helm in BGP mode; taken down afterwards."""
    state = lab.up(nodes=NODES, kubelet=True, with_bgp=True)
    print(f"\nup --kubelet --bgp: {state.up_seconds} s (helm install until Ready {state.helm_install_seconds} s, "
          f"images {state.image_build_seconds})")
    try:
        yield Kube(kubeconfig=KUBECONFIG, bin_dir=bin_dir())
    finally:
        lab.down()


@pytest.fixture(scope="module")
def established(real: Kube) -> float:
    """The BFDProfile, the BGPPeer towards the router, the pool and its BGPAdvertisement applied; the seconds until
    every node's session is Established at the router."""
    applied = time.monotonic()
    real.apply(*bgp_manifests(PEER, "lab", POOL, ADDRESSES))
    wait_for(lambda: all(bgp.router_sessions().get(n.ipv4) == "Established" for n in live()), timeout=60,
             interval=0.1, what="every node's session Established at the router")
    return time.monotonic() - applied


def live() -> list[Any]:
    return load_state().live_nodes


def speaker_pods(kube: Kube) -> dict[str, dict[str, Any]]:
    """The speaker Pods by node."""
    return {p["spec"]["nodeName"]: p for p in pods(kube, "speaker")}


def restarts(pod: dict[str, Any], container: str) -> int:
    return next(s["restartCount"] for s in pod["status"]["containerStatuses"] if s["name"] == container)


def node_status(kube: Kube, node: str) -> NodeBGPStatus | None:
    res = kube.kubectl("get", "bgpnodestatus", node, "-o", "json", check=False)
    return NodeBGPStatus.from_object(json.loads(res.stdout)) if res.returncode == 0 else None


def daemon_ready(status: NodeBGPStatus) -> str | None:
    """The reason of the DaemonReady condition."""
    cond = next((c for c in status.conditions if c.get("type") == ConditionType.BGP_DAEMON_READY.value), {})
    return cond.get("reason")


def reported_up(kube: Kube, node: str) -> bool:
    """NODE's BGPNodeStatus: FRR ready, the session Established, BFD up."""
    status = node_status(kube, node)
    session = status and status.session(PEER)
    return bool(status and session and daemon_ready(status) == BGPDaemonReason.READY.value
                and session.state is SessionState.ESTABLISHED and session.bfd is BFDState.UP)


def router_neighbor(address: str) -> dict[str, Any]:
    """The router's record of the session with ADDRESS."""
    out = frr.vtysh(bgp.ROUTER_DIR, f"show bgp neighbors {address} json").stdout
    return json.loads(out)[address]


def frr_running_config(pod: dict[str, Any]) -> str:
    """What the pod's FRR holds, asked through its own sockets with the frr image's vtysh (in its mounts)."""
    pid = reallab.container_pid(pod, "frr")
    out = subprocess.run(["nsenter", "-t", str(pid), "-m", "--", "vtysh", "--vty_socket", "/var/run/frr", "-c",
                          "show running-config"], check=True, capture_output=True, text=True, timeout=15).stdout
    return out[out.index("!"):]  # from the config itself, without vtysh's banner


def test_frr_container_ready_and_every_session_established(real: Kube, established: float,
                                                           record_property: Callable[[str, object], None]) -> None:
    """Every speaker Pod runs its frr container, Ready and never restarted; every node's session is Established at
    the router and in the node's BGPNodeStatus (FRR ready, BFD up)."""
    print(f"\nBGPPeer applied -> every session Established at the router: {established:.2f} s")
    record_property("established_s", round(established, 2))
    speakers = speaker_pods(real)
    assert sorted(speakers) == [n.name for n in live()]
    for pod in speakers.values():
        statuses = {s["name"]: s for s in pod["status"]["containerStatuses"]}
        assert statuses["frr"]["ready"] and statuses["frr"]["restartCount"] == 0, statuses["frr"]
        assert statuses["speaker"]["ready"], statuses["speaker"]
    wait_for(lambda: all(reported_up(real, n.name) for n in live()), timeout=30,
             what="BGPNodeStatus: FRR ready, the session Established and BFD up on every node")
    assert all(bgp.router_bfd_peers().get(n.ipv4, {}).get("status") == "up" for n in live())


def test_frr_container_has_exactly_the_charts_capabilities(real: Kube, established: float) -> None:
    """The frr container's process, and each FRR daemon in it, is bounded by exactly the capabilities the chart
    adds: nothing more than FRR's privilege code needs (docs/design.md, "BGP mode on real nodes")."""
    for pod in speaker_pods(real).values():
        frr_spec = next(c for c in pod["spec"]["containers"] if c["name"] == "frr")
        wanted = {CAPABILITY[name] for name in frr_spec["securityContext"]["capabilities"]["add"]}
        pid = reallab.container_pid(pod, "frr")
        status = proc_status(pid)
        assert status["Uid"].split()[0] == "0"
        assert caps(status, "CapEff") == caps(status, "CapPrm") == caps(status, "CapBnd") == wanted
        assert status["CapAmb"] == "0000000000000000"
        daemons = daemon_pids(pid)
        assert sorted(daemons) == sorted(DAEMONS), daemons
        for name, daemon in daemons.items():
            own = proc_status(daemon)
            assert own["Uid"].split()[0] == "0" and caps(own, "CapBnd") == wanted, name
            assert caps(own, "CapPrm") <= wanted and caps(own, "CapEff") <= wanted, name
            print(f"\n{pod['spec']['nodeName']} {name}: permitted {sorted(caps(own, 'CapPrm'))}", end="")


def daemon_pids(container_init: int) -> dict[str, int]:
    """The FRR daemons running in the same PID namespace as CONTAINER_INIT: name -> host PID."""
    namespace = os.readlink(f"/proc/{container_init}/ns/pid")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            same = os.readlink(f"/proc/{entry}/ns/pid") == namespace
            name = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:  # it ended meanwhile
            continue
        if same and name in DAEMONS:
            found[name] = int(entry)
    return found


@pytest.fixture(scope="module")
def vip(real: Kube, established: float) -> Iterator[str]:
    """A Cluster Service from POOL over a real Deployment's two pods; its IP once every node is its next hop."""
    names = [n.name for n in live()]
    reallab.deploy(real.bin_dir, APP, 2, names[:2], 8080, "default")
    real.apply(lb_service(APP, POOL, "Cluster"))
    ip = wait_for(lambda: next((i["ip"] for i in (real.get("service", APP).get("status", {}).get("loadBalancer")
                                                  or {}).get("ingress") or []), None), timeout=30, what="the VIP")
    wait_for(lambda: next_hops(ip) == everyone(), timeout=30, what=f"{ip} via every node at the router")
    yield ip
    real.kubectl("delete", "service", APP, "--ignore-not-found", "--wait=false")
    reallab.delete(real.bin_dir, APP)


def next_hops(ip: str) -> set[str]:
    return bgp.router_next_hops(f"{ip}/32")


def everyone() -> set[str]:
    return {n.ipv4 for n in live()}


def test_service_ip_is_ecmp_over_every_node_and_reaches_a_real_pod(real: Kube, vip: str) -> None:
    """The router's FIB routes the VIP via every node; bgpclient, whose only way out is the router, gets an HTTP
    answer from a pod of the Deployment."""
    assert next_hops(vip) == everyone()
    body = wait_for(lambda: real.curl("bgpclient", f"http://{vip}/"), timeout=30, what=f"bgpclient -> {vip}")
    assert body.startswith(f"{APP}-"), body


class NextHopWatch:
    """Whether the router's FIB ever lost VIA as a next hop of IP while it ran (polled in a thread)."""

    def __init__(self, ip: str, via: str) -> None:
        self.lost_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ip, via), daemon=True)
        self._thread.start()

    def _run(self, ip: str, via: str) -> None:
        while not self._stop.is_set() and self.lost_at is None:
            if via not in next_hops(ip):
                self.lost_at = time.monotonic()
            self._stop.wait(0.05)

    def stop(self) -> float | None:
        """Stop polling; when the next hop was first missing (None: never)."""
        self._stop.set()
        self._thread.join(5)
        return self.lost_at


def speaker_log(kube: Kube, pod: dict[str, Any]) -> str:
    return kube.kubectl("logs", "-n", reallab.NAMESPACE, pod["metadata"]["name"], "-c", "speaker").stdout


def test_a_speaker_container_restart_resets_no_session_and_the_route_stays(
        real: Kube, vip: str, record_property: Callable[[str, object], None]) -> None:
    """The speaker process killed (the frr container untouched): kubelet starts it again, it reads FRR back and
    finds it holding what it wants; the router's session is never reset and the node never leaves the route."""
    target = live()[0]
    pod = speaker_pods(real)[target.name]
    before, was = router_neighbor(target.ipv4), restarts(pod, "speaker")
    assert before["bgpState"] == "Established"
    watch_fib = NextHopWatch(vip, target.ipv4)
    killed = time.monotonic()
    os.kill(reallab.container_pid(pod, "speaker"), signal.SIGKILL)
    try:
        pod = wait_for(lambda: (p := speaker_pods(real)[target.name]) and restarts(p, "speaker") == was + 1
                       and reallab.pod_ready(p) and p, timeout=60, what="the speaker container restarted and Ready")
        # The new process has applied the feed's first state to FRR (its log says so once it is in sync).
        wait_for(lambda: "FRR: InSync" in speaker_log(real, pod), timeout=60, what="the new speaker in sync with FRR")
        synced = time.monotonic() - killed
        time.sleep(4)  # more than a keepalive (3 s): a reset would show by now
    finally:
        lost = watch_fib.stop()
    after = router_neighbor(target.ipv4)
    print(f"\nspeaker killed: restarted and in sync with FRR after {synced:.1f} s; the router's session "
          f"{before['connectionsEstablished']} -> {after['connectionsEstablished']} connections, up "
          f"{before['bgpTimerUpMsec'] / 1000:.0f} s -> {after['bgpTimerUpMsec'] / 1000:.0f} s")
    record_property("speaker_restart_in_sync_s", round(synced, 1))
    assert lost is None, f"{target.name} left the route {lost - killed:.2f} s after the speaker was killed"
    assert after["bgpState"] == "Established"
    assert after["connectionsEstablished"] == before["connectionsEstablished"]
    assert after["bgpTimerUpMsec"] > before["bgpTimerUpMsec"] + (time.monotonic() - killed - 1) * 1000
    assert restarts(pod, "frr") == 0
    assert next_hops(vip) == everyone()


class DaemonReasons:
    """Every DaemonReady reason NODE's BGPNodeStatus is written with (a watch on the API server, in a thread)."""

    def __init__(self, node: str) -> None:
        self.seen: list[tuple[float, str]] = []
        self.failed: BaseException | None = None  # what ended the watch early, for the test's message
        self.listening = threading.Event()
        self._watch = watch.Watch()
        api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(KUBECONFIG)))
        self._thread = threading.Thread(target=self._run, args=(api, node), daemon=True)
        self._thread.start()
        assert self.listening.wait(10), "the BGPNodeStatus watch did not start"

    def _run(self, api: client.CustomObjectsApi, node: str) -> None:
        try:
            for event in self._watch.stream(api.list_cluster_custom_object, GROUP, VERSION, "bgpnodestatuses",
                                            field_selector=f"metadata.name={node}", timeout_seconds=120):
                self.listening.set()
                if not isinstance(event, dict) or event.get("type") not in ("ADDED", "MODIFIED"):
                    continue  # a line the client could not read, or the object deleted
                reason = daemon_ready(NodeBGPStatus.from_object(event["object"]))
                if reason and (not self.seen or self.seen[-1][1] != reason):
                    self.seen.append((time.monotonic(), reason))
        except Exception as e:  # said in the test's failure, not lost in a thread
            self.failed = e
            self.listening.set()

    def stop(self) -> tuple[list[tuple[float, str]], BaseException | None]:
        """Stop watching; the reasons seen, and what ended the watch early if anything did."""
        self._watch.stop()
        return self.seen, self.failed


def test_frr_container_killed_is_reported_and_gets_the_whole_config_again(
        real: Kube, vip: str, record_property: Callable[[str, object], None]) -> None:
    """The frr container killed on one node: its session and its next hop go; the speaker reports FRR unreachable
    in BGPNodeStatus; kubelet starts the container again, the speaker gives the new, empty daemons the whole config
    (the same running config as before) and the node is a next hop again."""
    target = live()[1]
    pod = speaker_pods(real)[target.name]
    config_before, speaker_was = frr_running_config(pod), restarts(pod, "speaker")
    assert PEER in config_before and vip in config_before
    reasons, gone = DaemonReasons(target.name), NextHopWatch(vip, target.ipv4)
    killed = time.monotonic()
    os.kill(reallab.container_pid(pod, "frr"), signal.SIGKILL)
    try:
        wait_for(lambda: gone.lost_at, timeout=15, interval=0.05, what=f"{target.name} gone from {vip} with its FRR")
        wait_for(lambda: next_hops(vip) == everyone(), timeout=90, interval=0.1,
                 what=f"{target.name} a next hop of {vip} again")
        back = time.monotonic() - killed
        wait_for(lambda: reported_up(real, target.name), timeout=30, what=f"{target.name}'s BGPNodeStatus up again")
    finally:
        seen, failed = reasons.stop()
        gone.stop()
    pod = speaker_pods(real)[target.name]
    unreachable = next((at - killed for at, r in seen if r == BGPDaemonReason.UNREACHABLE.value), None)
    print(f"\nfrr container killed: DaemonUnreachable written after {unreachable and round(unreachable, 2)} s; "
          f"the node a next hop again after {back:.1f} s; reasons written: {[r for _, r in seen]}")
    record_property("frr_restart_route_back_s", round(back, 1))
    assert unreachable is not None, (seen, failed)
    assert seen[-1][1] == BGPDaemonReason.READY.value, seen
    assert restarts(pod, "frr") == 1 and restarts(pod, "speaker") == speaker_was
    assert frr_running_config(pod) == config_before
    assert real.curl("bgpclient", f"http://{vip}/")
