"""The lab as a whole: bring it up, take it down, report, and act on nodes and the API server (IronLB's own
processes: e2e.lab.ironlb_procs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from e2e.lab import (
    bgp,
    clusterdns,
    conformlab,
    control_plane,
    kube,
    kubeproxy,
    metallb,
    netns,
    network,
    procs,
    reallab,
    realnode,
    testclient,
    workload,
)
from e2e.lab.config import (
    BRIDGE_NS,
    KUBECONFIG,
    LAB_DIR,
    NS_PREFIX,
    REPO,
    NodeAddr,
    node_named,
    tools_bin,
)
from e2e.lab.ironlb_procs import ironlb_available, ironlb_env, start_ironlb, start_speaker
from e2e.lab.pki import ensure_pki, write_kubeconfig
from e2e.lab.state import LabState, StateFileError, Status, load_state, save_state, update_state
from e2e.lab.tools import bin_dir


def up(nodes: int = 3, ipv6: bool = False, with_ironlb: bool = True, kubelet: bool = False,
       with_bgp: bool = False, bfd: bgp.Bfd = bgp.DEFAULT_BFD, conformance: bool = False) -> LabState:
    """Start the whole lab and return when it is ready; replaces any leftover lab. WITH_BGP adds the router,
    bgpclient and the nodes' FRR (e2e.lab.bgp), the router's BFD set by BFD. CONFORMANCE (real nodes only) adds
    what the upstream e2e specs need (e2e.lab.conformlab)."""
    if nodes < 1 or nodes > 20:
        raise ValueError("--nodes must be between 1 and 20")
    if conformance and not kubelet:
        raise ValueError("--conformance needs --kubelet (real nodes)")
    if kubelet:
        return _up_real(nodes, ipv6, with_ironlb, with_bgp, bfd, conformance)
    with procs.lab_lock():
        _teardown()
        started = time.monotonic()
        binaries = tools_bin()
        all_nodes = _lay_out(LabState(status=Status.STARTING, bin_dir=binaries, nodes=nodes, ipv6=ipv6))
        control_plane.start_etcd(binaries)
        control_plane.start_apiserver(binaries, ipv6, node_hosts=reallab.kubelet_hosts(all_nodes))
        control_plane.start_controller_manager(binaries, ipv6)
        api = kube.core_api()
        for n in all_nodes:
            kube.register_node(api, n, ipv6)
            kubeproxy.start(n, binaries, ipv6)
            start_node_agent(n)
        if with_bgp:
            bgp.attach(all_nodes, ipv6, lightweight=True, bfd=bfd)
        _wait_default_service_account(api)
        update_state(status=Status.READY, ironlb=False, bgp=with_bgp)
        if with_ironlb and ironlb_available():
            start_ironlb()
        return update_state(up_seconds=round(time.monotonic() - started, 1))


def _lay_out(fresh: LabState) -> list[NodeAddr]:
    """What both lab modes start from: state, PKI, the bridges, the node and client namespaces."""
    save_state(fresh)
    ensure_pki()
    write_kubeconfig(KUBECONFIG, "admin")
    network.create_bridges()
    all_nodes = fresh.all_nodes
    for n in all_nodes:
        network.create_node(n, all_nodes, fresh.ipv6)
    network.create_client(fresh.ipv6)
    return all_nodes


def _up_real(nodes: int, ipv6: bool, with_ironlb: bool, with_bgp: bool, bfd: bgp.Bfd,
             conformance: bool = False) -> LabState:
    """`up --kubelet`: real nodes, and IronLB installed by helm (see e2e.lab.reallab); WITH_BGP: the router and
    bgpclient, and the FRR image in every node for the chart's frr container; CONFORMANCE: cluster DNS, the e2e
    images and the e2e client (e2e.lab.conformlab)."""
    with procs.lab_lock():
        _teardown()
        started = time.monotonic()
        binaries = tools_bin()
        images = reallab.ensure_images(binaries, frr=with_bgp)
        conformance_archives: list[Path] = []
        if conformance:
            conformance_archives, images["conformance"] = conformlab.build_images(binaries)
        all_nodes = _lay_out(LabState(status=Status.STARTING, bin_dir=binaries, nodes=nodes, ipv6=ipv6, kubelet=True,
                                      image_build_seconds=images, conformance=conformance))
        reallab.start_control_plane(binaries, all_nodes, ipv6)
        reallab.start_nodes(binaries, all_nodes, ipv6, clusterdns.CLUSTER_DNS_IP if conformance else None)
        if conformance:
            images["conformance_attach"] = conformlab.attach(binaries, all_nodes, conformance_archives)
            update_state(image_build_seconds=images)
        if with_bgp:
            reallab.import_frr_image(all_nodes)
            bgp.attach(all_nodes, ipv6, lightweight=False, bfd=bfd)
        _wait_default_service_account(kube.core_api())
        update_state(status=Status.READY, ironlb=False, bgp=with_bgp,
                     nodes_seconds=round(time.monotonic() - started, 1))
        if with_ironlb:
            sets = reallab.frr_chart_values() if with_bgp else ()
            update_state(helm_install_seconds=reallab.helm_install(binaries, *sets), ironlb=True)
        return update_state(up_seconds=round(time.monotonic() - started, 1))


def attach_bgp(bfd: bgp.Bfd = bgp.DEFAULT_BFD) -> bool:
    """Add what `up --bgp` adds to the running lab (its live nodes); False if it has it already."""
    with procs.lab_lock():
        state = load_state()
        if state.bgp:
            return False
        bgp.attach(state.live_nodes, state.ipv6, lightweight=not state.kubelet, bfd=bfd)
        update_state(bgp=True)
        return True


def detach_bgp() -> None:
    """Remove the router, bgpclient and the nodes' FRR from the running lab."""
    with procs.lab_lock():
        bgp.detach(load_state().all_nodes)
        update_state(bgp=False)


def build_images() -> dict[str, float]:
    """Build the lab's images if out of date, and import them into the running real nodes."""
    state = load_state()
    took = reallab.ensure_images(bin_dir(), frr=state.bgp)
    if took and state.kubelet:
        for n in state.live_nodes:
            realnode.import_images(n)
        if state.bgp:
            reallab.import_frr_image(state.live_nodes)
    return took


def _wait_default_service_account(api: Any, timeout: float = 60) -> None:
    """Wait until the controller manager made the default ServiceAccount (Pods need it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(sa.metadata.name == "default" for sa in api.list_namespaced_service_account("default").items):
            return
        time.sleep(0.3)
    raise RuntimeError("kube-controller-manager did not create the default ServiceAccount")


def down() -> list[str]:
    """Stop every lab process and delete every lab namespace."""
    with procs.lab_lock():
        return _teardown()


def _teardown() -> list[str]:
    """Stop recorded processes (by PID), then remove namespaces, host veth and lab data."""
    try:
        load_state()
    except StateFileError as exc:  # what it recorded is unknown: take down everything else, and say so
        print(f"{exc}; its recorded processes are left running", file=sys.stderr)
        save_state(LabState())
    # Real nodes first: their kubelets, runtimes and containers, mounts, pod namespaces and cgroups.
    stopped = realnode.teardown() + procs.stop_all()
    removed = network.destroy_all()
    for sub in ("etcd", "kcm-certs", bgp.FRR_DIR.name):
        shutil.rmtree(LAB_DIR / sub, ignore_errors=True)
    save_state(LabState())
    return stopped + removed


def status() -> dict[str, Any]:
    """What the lab runs now."""
    state = load_state()
    return {
        "status": state.status.value,
        "nodes": state.nodes,
        "ipv6": state.ipv6,
        "bgp": state.bgp,
        "killed_nodes": list(state.killed),
        "processes": {n: ("running" if procs.is_running(e) else "stopped") for n, e in sorted(state.procs.items())},
        "namespaces": netns.list_lab_netns(),
        "kubeconfig": str(KUBECONFIG) if KUBECONFIG.exists() else None,
    }


def namespace_of(name: str) -> str:
    """Network namespace behind an exec target: node-N, client, bridge, router, bgpclient, or a pod name."""
    if name.startswith("node-") or name == "client":
        return f"{NS_PREFIX}{name}"
    if name == "bridge":
        return BRIDGE_NS
    if name in bgp.namespaces():
        return bgp.namespaces()[name]
    if name == "e2e":  # `up --kubelet --conformance`: the e2e client
        return testclient.NAMESPACE
    if name in load_state().pods:
        return workload.pod_netns(name)
    raise KeyError(f"no lab namespace named {name!r} (node-N, client, bridge, router, bgpclient, or a pod name)")


def exec_in(name: str, argv: list[str]) -> int:
    """Run a command inside a lab namespace, attached to this terminal."""
    return subprocess.call(["ip", "netns", "exec", namespace_of(name), *argv])


def tool(name: str, argv: list[str]) -> int:
    """Run the lab's kubectl or helm against the lab."""
    # The kubeconfig goes in the environment: a flag before the user's arguments would make
    # kubectl read `-n NS get ...` as a plugin invocation and refuse it.
    return subprocess.call([str(bin_dir() / name), *argv], env={**os.environ, "KUBECONFIG": str(KUBECONFIG)})


def kill_node(name: str) -> float:
    """Hard-fail a node: cut its links and SIGKILL its processes (no goodbye). Returns the monotonic
    time the node was cut off."""
    n = node_named(name)
    if load_state().kubelet:
        cut = reallab.kill_node(n)
        _mark_killed(n.name, True)
        return cut
    cut = network.cut_node(n)
    bgp.kill_node_frr(n)
    for proc in (f"speaker-{n.name}", metallb.speaker_proc(n.name), kubeproxy.proc_name(n), f"nodeagent-{n.name}"):
        procs.stop(proc, sig=9, timeout=2)
    for pod in workload.pods_on(n.name):
        procs.stop(f"pod-{pod}", sig=9, timeout=2)
    _mark_killed(n.name, True)
    return cut


def _mark_killed(node_name: str, killed: bool) -> None:
    """Record a node as killed (or alive again)."""
    save_state(load_state().with_killed(node_name, killed))


def revive_node(name: str) -> None:
    """Bring a killed node back as after a reboot: fresh nftables and conntrack, links, routes,
    kube-proxy, its pods and its speaker."""
    state = load_state()
    n = node_named(name)
    if state.kubelet:
        reallab.revive_node(n, state.all_nodes, bin_dir(), state.ipv6)
        if state.bgp:
            bgp.add_node_routes(n, state.ipv6)
        _mark_killed(n.name, False)
        return
    network.forget_kernel_state(n)
    network.reconnect_node(n, state.all_nodes, state.ipv6)
    if state.bgp:
        bgp.add_node_routes(n, state.ipv6)
        bgp.start_node_frr(n)
    kubeproxy.start(n, bin_dir(), state.ipv6)
    start_node_agent(n)
    for pod in workload.pods_on(n.name):
        workload.start_pod_process(pod, state.pods[pod].port)
    if state.ironlb and ironlb_available("speaker"):
        start_speaker(n.name)
    if state.metallb:
        metallb.start_speaker(n.name)
    _mark_killed(n.name, False)


def start_node_agent(n: NodeAddr) -> int:
    """What the node's kubelet would write for fencing: its node Lease and its speaker's Pod (e2e.probes.nodeagent),
    from inside the node, so it dies with it."""
    return procs.spawn(f"nodeagent-{n.name}", [sys.executable, "-m", "e2e.probes.nodeagent", n.name, "kube-system",
                                               f"speaker-{n.name}"],
                       netns=n.netns, env={**ironlb_env(), "PYTHONPATH": f"{REPO / 'src'}:{REPO}"})


def write_admin_kubeconfig() -> Path:
    """(Re)write the admin kubeconfig."""
    return write_kubeconfig(KUBECONFIG, "admin")


def stop_apiserver() -> None:
    """Stop kube-apiserver (an API outage; everything else keeps running)."""
    procs.stop("kube-apiserver")


def start_apiserver() -> None:
    """Start kube-apiserver again and wait until it is ready."""
    state = load_state()
    hosts = reallab.kubelet_hosts(state.all_nodes)
    if state.kubelet:
        control_plane.start_apiserver(bin_dir(), state.ipv6, kubelet_hosts=hosts)
    else:
        control_plane.start_apiserver(bin_dir(), state.ipv6, node_hosts=hosts)


def node_mac(node_name: str) -> str:
    """MAC address of a node's eth0 (the one its speaker answers with)."""
    return netns.link_mac(node_named(node_name).netns, "eth0")
