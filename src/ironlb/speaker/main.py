"""`ironlb-speaker`: announce this node's share of LoadBalancer IPs over ARP/NDP."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ironlb.common import kubeapi, listen
from ironlb.common.kubeapi.metrics import count_writes
from ironlb.common.logs import setup_logging
from ironlb.core.announce_gate import DEFAULT_BOUND_S
from ironlb.speaker.bgp.component import BgpComponent
from ironlb.speaker.bgp.drain import DrainSettings
from ironlb.speaker.control import presence
from ironlb.speaker.control.app import Speaker
from ironlb.speaker.control.fencing import ApiLossPolicy
from ironlb.speaker.control.forward import ForwardingSettings
from ironlb.speaker.control.join import KUBE_PROXY_METRICS_URL
from ironlb.speaker.control.keys import KeyWatcher, read_key
from ironlb.speaker.control.metrics import registry_for
from ironlb.speaker.control.reannounce import reannounce_every
from ironlb.speaker.control.steer import SteeringSettings
from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S

log = logging.getLogger("ironlb.speaker")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (each also settable by an IRONLB_* / NODE_NAME environment variable)."""
    env = os.environ.get
    p = argparse.ArgumentParser(prog="ironlb-speaker", description=__doc__)
    p.add_argument("--node", default=env("NODE_NAME") or socket.gethostname())
    p.add_argument("--lb-class", default=env("IRONLB_LB_CLASS") or None)
    p.add_argument("--namespace", default=env("POD_NAMESPACE", "kube-system"), help="where the heartbeat Secret is")
    p.add_argument("--heartbeat-secret", default=env("IRONLB_HEARTBEAT_SECRET", "ironlb-heartbeat"))
    p.add_argument("--heartbeat-secret-key", default=env("IRONLB_HEARTBEAT_SECRET_KEY", "key"))
    p.add_argument("--heartbeat-port", type=int, default=int(env("IRONLB_HEARTBEAT_PORT", "7946")))
    p.add_argument("--heartbeat-interval", type=float, default=float(env("IRONLB_HEARTBEAT_INTERVAL", str(INTERVAL_S))),
                   help="seconds between heartbeats to each peer")
    p.add_argument("--heartbeat-timeout", type=float, default=float(env("IRONLB_HEARTBEAT_TIMEOUT", str(TIMEOUT_S))),
                   help="seconds of silence before a peer is declared dead (at least 3 intervals)")
    p.add_argument("--heartbeat-topology", default=env("IRONLB_HEARTBEAT_TOPOLOGY", "ring"), choices=["mesh", "ring"],
                   help="whom heartbeats go to: 'ring' the ring neighbours only, once more than five nodes are up and "
                        "every peer up speaks the ring's format (the full mesh until then); 'mesh' every peer always")
    # Health on the node's loopback: kubelet probes a hostNetwork pod from the node itself.
    listen.add_arguments(p, env, metrics_port=7473, health_host="127.0.0.1", health_port=7474)
    p.add_argument("--exclude-interfaces", default=env("IRONLB_EXCLUDE_INTERFACES", ""),
                   help="comma list of interfaces never to answer on, names or globs (e.g. mgmt0,docker*)")
    p.add_argument("--nodeport-forwarding", default=env("IRONLB_NODEPORT_FORWARDING", "true"),
                   choices=["true", "false"], help="program nftables for pools with forwarding: NodePort")
    p.add_argument("--steer-around-dead-nodes", default=env("IRONLB_STEERING", "true"), choices=["true", "false"],
                   help="while a dead node's endpoints are still ready in Kubernetes, send the new connections of "
                        "the VIPs this node announces to live endpoints only (nftables; needs NET_ADMIN)")
    p.add_argument("--nft", default=env("IRONLB_NFT", "nft"), help="nft binary, for forwarding: NodePort pools")
    p.add_argument("--kube-proxy-healthz-port", type=int, default=int(env("IRONLB_KUBE_PROXY_HEALTHZ_PORT", "10256")),
                   help="kube-proxy's healthz port on every node (health check of NodePort forwarding)")
    p.add_argument("--kube-proxy-metrics-url", default=env("IRONLB_KUBE_PROXY_METRICS_URL", KUBE_PROXY_METRICS_URL),
                   help="kube-proxy's metrics on this node: the speaker joins the election once kube-proxy has "
                        "synced its rules, and newly announces a Service that just changed once kube-proxy has "
                        "synced it ('' waits for neither, e.g. where kube-proxy does not run)")
    p.add_argument("--join-wait", type=float, default=float(env("IRONLB_JOIN_WAIT", "30")),
                   help="longest wait in seconds for kube-proxy's first sync before joining anyway")
    p.add_argument("--announce-wait", type=float, default=float(env("IRONLB_ANNOUNCE_WAIT", str(DEFAULT_BOUND_S))),
                   help="longest wait in seconds before newly announcing a Service that just changed, for this "
                        "node's kube-proxy to sync it (read from --kube-proxy-metrics-url; 0: never wait)")
    p.add_argument("--restart-hold", type=float, default=float(env("IRONLB_RESTART_HOLD", "60")),
                   help="seconds peers answer for this node's IPs, with its MACs, while its speaker restarts (its "
                        "node goes on forwarding, so nothing moves); ended early when the node stops answering or "
                        "the new speaker joins; 0: leave instead, and the IPs move at once")
    p.add_argument("--kernel-arp", default=env("IRONLB_KERNEL_ARP", "true"), choices=["true", "false"],
                   help="answer ARP requests in the kernel (a tcx program; needs CAP_BPF and CAP_NET_ADMIN, Linux "
                        "6.6+); where it cannot be loaded the speaker answers from user space and logs why")
    p.add_argument("--reannounce-interval", type=float, default=float(env("IRONLB_REANNOUNCE_INTERVAL", "0") or 0),
                   help="seconds between gratuitous ARP / unsolicited NA refreshes of every owned IP (0: off)")
    p.add_argument("--pod-name", default=env("POD_NAME", ""),
                   help="this speaker's Pod (in --namespace), where it says whether it hears peers when that changes "
                        "('' : it says nothing, and peers that settle a partition count it as alone)")
    p.add_argument("--speaker-selector", default=env("IRONLB_SPEAKER_SELECTOR", presence.DEFAULT_SELECTOR),
                   help="label selector of the speaker Pods in --namespace, read to settle partitions")
    p.add_argument("--node-lease-namespace", default=env("IRONLB_NODE_LEASE_NAMESPACE", presence.NODE_LEASE_NAMESPACE),
                   help="namespace of the kubelets' node Leases, read to settle partitions")
    p.add_argument("--on-api-loss", default=env("IRONLB_ON_API_LOSS", ApiLossPolicy.ANSWER.value),
                   choices=[c.value for c in ApiLossPolicy],
                   help="when this node hears no peer and cannot reach the API either: 'answer' keeps its IPs (it may "
                        "be the last survivor, e.g. of a 3-node cluster whose control plane lost quorum), 'fence' "
                        "stops answering (it may be the one cut off)")
    p.add_argument("--frr-socket-dir", default=env("IRONLB_FRR_SOCKET_DIR", ""),
                   help="BGP mode: the directory of FRR's vty sockets (zebra.vty, bgpd.vty, bfdd.vty); the speaker "
                        "owns FRR's whole config ('' : BGP mode off)")
    p.add_argument("--bgp-drain-seconds", type=float,
                   default=float(env("IRONLB_BGP_DRAIN_SECONDS", str(DrainSettings.bound_s))),
                   help="BGP mode: longest wait, on SIGTERM, for the peers to take the graceful-shutdown update "
                        "before the routes are withdrawn")
    p.add_argument("--bgp-drain-on-cordon", default=env("IRONLB_BGP_DRAIN_ON_CORDON", "true"),
                   choices=["true", "false"],
                   help="BGP mode: drain this node's routes when its Node is cordoned (spec.unschedulable, as kubectl "
                        "cordon and drain set it); 'false' for clusters that cordon nodes that keep serving. The "
                        "shutdown and deletion taints and SIGTERM drain either way")
    p.add_argument("--ignore-exclude-lb", default=env("IRONLB_IGNORE_EXCLUDE_LB", "false"), choices=["true", "false"],
                   help="announce from Nodes labelled node.kubernetes.io/exclude-from-external-load-balancers too "
                        "(as MetalLB's --ignore-exclude-lb: single-node, kind and Talos clusters label their only "
                        "node)")
    p.add_argument("--bgp-proxy-next-hops", default=env("IRONLB_BGP_PROXY_NEXT_HOPS", "false"),
                   choices=["true", "false"],
                   help="BGP mode: announce IPv4 paths on other nodes' behalf (their address as next hop) and not "
                        "this node's own, so that the survivors withdraw a dead node's next hop from the router as "
                        "soon as their heartbeats miss it (docs/design.md, 'BGP mode: beating BFD')")
    p.add_argument("--log-format", choices=["json", "text"], default=env("IRONLB_LOG_FORMAT", "json"))
    p.add_argument("--log-level", default=env("IRONLB_LOG_LEVEL", "INFO"))
    args = p.parse_args(argv)
    if not 0.01 <= args.heartbeat_interval <= 10 or args.heartbeat_timeout + 1e-9 < 3 * args.heartbeat_interval:
        p.error(f"--heartbeat-interval must be 0.01-10 s and --heartbeat-timeout at least three intervals "
                f"(got {args.heartbeat_interval} s and {args.heartbeat_timeout} s): one lost datagram must not "
                "declare a peer dead")
    return args


async def run(args: argparse.Namespace) -> int:
    """Run the speaker until SIGTERM/SIGINT."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(16, thread_name_prefix="api"))
    api = kubeapi.connect()
    key = await read_key(api, args.namespace, args.heartbeat_secret, args.heartbeat_secret_key)
    exclude = [i.strip() for i in args.exclude_interfaces.split(",") if i.strip()]
    fwd = ForwardingSettings(enabled=args.nodeport_forwarding == "true", nft=args.nft,
                             kube_proxy_healthz_port=args.kube_proxy_healthz_port)
    steering = SteeringSettings(enabled=args.steer_around_dead_nodes == "true", nft=args.nft,
                                probe_port=args.kube_proxy_healthz_port)
    bgp = bgp_component(args)  # BGP mode: the speaker's feed hands it each change
    speaker = Speaker(args.node, args.lb_class, api, key, args.heartbeat_port, exclude, fwd, steering=steering,
                      kube_proxy_metrics_url=args.kube_proxy_metrics_url, join_bound=args.join_wait,
                      heartbeat=(args.heartbeat_interval, args.heartbeat_timeout),
                      kernel_arp=args.kernel_arp == "true", on_api_loss=ApiLossPolicy(args.on_api_loss),
                      restart_hold_s=max(0.0, args.restart_hold), topology=args.heartbeat_topology,
                      ignore_exclude_lb=args.ignore_exclude_lb == "true", bgp=bgp,
                      bgp_namespace=args.namespace, announce_wait=max(0.0, args.announce_wait),
                      bgp_drain_on_cordon=args.bgp_drain_on_cordon == "true")
    if speaker.bgp is not None:
        speaker.bgp.proxy_next_hops = args.bgp_proxy_next_hops == "true"
    speaker.presence = presence.Presence(api, args.namespace, args.pod_name,
                                         lambda: len(speaker.fast.membership.heard()) if speaker.fast else 0,
                                         args.speaker_selector, args.node_lease_namespace)
    # Key changes (a rotation) reach the heartbeats at runtime; a restart is never needed.
    keys = KeyWatcher(api, args.namespace, args.heartbeat_secret, args.heartbeat_secret_key,
                      speaker.set_key, key)
    keys.start()
    registry = registry_for(lambda: speaker)
    count_writes(api, registry)
    health = listen.health_server(args, registry, speaker.ready, api)
    task = asyncio.create_task(speaker.run(health))
    refresher = asyncio.create_task(reannounce_every(speaker, args.reannounce_interval))
    bgp_task = asyncio.create_task(bgp.run()) if bgp else None
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stopping.append(asyncio.create_task(stop(task, bgp, speaker.terminating))))
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if bgp_task:
        bgp_task.cancel()
    refresher.cancel()
    keys.stop()
    api.close()
    return 0


def bgp_component(args: argparse.Namespace) -> BgpComponent | None:
    """BGP mode's component when --frr-socket-dir is set (its Desired states come from the integration's feed)."""
    if not args.frr_socket_dir:
        return None
    return BgpComponent(args.frr_socket_dir, drain_settings=DrainSettings(bound_s=max(0.0, args.bgp_drain_seconds)))


async def stop(speaker: asyncio.Task, bgp: BgpComponent | None, draining: Callable[[], None] = lambda: None) -> None:
    """On SIGTERM: in BGP mode drain first (routes less preferred, withdrawn, sessions closed; DRAINING told as it
    starts), then stop."""
    try:
        if bgp is not None and not speaker.done():
            draining()
            await bgp.drain()
    finally:  # a drain that fails (FRR's directory gone) must not keep the speaker from stopping
        speaker.cancel()


def main(argv: list[str] | None = None) -> None:
    """Entry point of `ironlb-speaker`."""
    args = parse_args(argv)
    setup_logging(args.log_format, args.log_level)
    sys.exit(asyncio.run(run(args)))
