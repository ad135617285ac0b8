"""`ironlb-operator`: take the leader Lease, then run the kopf handlers until the Lease is lost."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

from ironlb.api import constants
from ironlb.common import kubeapi, listen
from ironlb.common.events import EventRecorder, KubeEventSink
from ironlb.common.kubeapi.metrics import count_writes
from ironlb.common.logs import setup_logging
from ironlb.operator import bgpobjects, handlers, heartbeat_secret, key_rotation, metrics, startup
from ironlb.operator.lease import LeaderLease, LeaseConfig
from ironlb.operator.reconciler import AllocationEvents, Reconciler
from ironlb.operator.writer import Writer

COMPONENT = "ironlb-operator"

log = logging.getLogger("ironlb.operator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (each also settable by an IRONLB_* environment variable)."""
    env = os.environ.get
    p = argparse.ArgumentParser(prog="ironlb-operator", description=__doc__)
    p.add_argument("--lb-class", default=env("IRONLB_LB_CLASS") or None,
                   help="serve Services with exactly this spec.loadBalancerClass (default: Services with none)")
    p.add_argument("--lease-namespace", default=env("POD_NAMESPACE", "kube-system"))
    p.add_argument("--lease-name", default=env("IRONLB_LEASE_NAME", "ironlb-operator"))
    p.add_argument("--lease-duration", type=float, default=float(env("IRONLB_LEASE_DURATION", "15")))
    # Health on the metrics listener unless a port is given (the chart gives one: kubelet probes the pod's address).
    listen.add_arguments(p, env, metrics_port=7472, health_host="0.0.0.0", health_port=0)
    p.add_argument("--identity", default=env("POD_NAME") or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    p.add_argument("--heartbeat-secret", default=env("IRONLB_HEARTBEAT_SECRET") or None,
                   help="create this Secret (in the Lease namespace) with a random speaker heartbeat key when absent")
    p.add_argument("--heartbeat-secret-key", default=env("IRONLB_HEARTBEAT_SECRET_KEY", "key"))
    p.add_argument("--heartbeat-rotation-window", type=float,
                   default=float(env("IRONLB_HEARTBEAT_ROTATION_WINDOW", str(key_rotation.DEFAULT_WINDOW_S))),
                   help="seconds each step of a heartbeat key rotation (annotation ironlb.io/rotate) waits for "
                        "every speaker to see the Secret")
    p.add_argument("--owner-deployment", default=env("IRONLB_OWNER_DEPLOYMENT") or None,
                   help="the operator's Deployment: owner of the Lease and Secret it creates (removed with it)")
    p.add_argument("--ip-reuse-delay", type=float,
                   default=float(env("IRONLB_IP_REUSE_DELAY", str(constants.DEFAULT_IP_REUSE_DELAY_S))),
                   help="seconds a released IP stays held for its Service's namespace: other namespaces can neither "
                        "request nor get it meanwhile, and a recreated Service gets its IP back (0: no holds)")
    p.add_argument("--allocation-events", choices=[e.value for e in AllocationEvents],
                   default=env("IRONLB_ALLOCATION_EVENTS", AllocationEvents.MOVES.value),
                   help="which allocations get an IPAllocated Event: moves (a Service whose IP changes; a first "
                        "assignment is shown by its status alone) or all")
    p.add_argument("--withdrawal-timeout", type=float,
                   default=float(env("IRONLB_WITHDRAWAL_TIMEOUT", str(constants.DEFAULT_WITHDRAWAL_TIMEOUT_S))),
                   help="seconds a Service being deleted (or no longer ours) keeps the cleanup finalizer while no "
                        "speaker has confirmed that its IPs are withdrawn; then it goes anyway, with a Warning Event")
    p.add_argument("--log-format", choices=["json", "text"], default=env("IRONLB_LOG_FORMAT", "json"))
    p.add_argument("--log-level", default=env("IRONLB_LOG_LEVEL", "INFO"))
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    """Wait to lead, then operate; return non-zero if leadership was lost.

    Read top to bottom: each component starts in order and is stopped in reverse by the exit stack,
    so a shutdown stops kopf, then allocating, then the watch, then hands the Lease over."""
    # API writes run in threads (blocking client): the default executor (cores + 4) would cap bursts.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32, thread_name_prefix="api"))
    # One client for every request the operator makes itself: Lease, Secret, writes, Events, the Service
    # informer. kopf's watches log in with its cluster configuration (startup.kopf_handlers).
    kube = kubeapi.connect(pool_size=32)
    count_writes(kube, metrics.REGISTRY)
    owner = (await asyncio.to_thread(heartbeat_secret.deployment_owner, kube, args.lease_namespace,
                                     args.owner_deployment)) if args.owner_deployment else ()
    lease = LeaderLease(kube, LeaseConfig.for_duration(
        args.lease_namespace, args.lease_name, args.lease_duration), args.identity, owner=owner)
    recorder = EventRecorder(KubeEventSink(kube), COMPONENT, args.identity)
    reconciler = Reconciler(Writer(kube, recorder, lease.may_write), args.lb_class, reuse_delay=args.ip_reuse_delay,
                            allocation_events=AllocationEvents(args.allocation_events),
                            withdrawal_timeout=max(0.0, args.withdrawal_timeout))
    secret = heartbeat_secret.HeartbeatSecret(args.lease_namespace, args.heartbeat_secret, args.heartbeat_secret_key,
                                              owner) if args.heartbeat_secret else None

    async with contextlib.AsyncExitStack() as stack:
        stack.callback(kube.close)  # last: Events still queued are written through it
        await stack.enter_async_context(startup.events(recorder))
        await stack.enter_async_context(startup.health(listen.health_server(
            args, metrics.REGISTRY, lambda: readiness(lease, reconciler), kube)))
        held = await stack.enter_async_context(startup.leadership(lease))
        await stack.enter_async_context(startup.heartbeat_keys(kube, secret, lease.may_write,
                                                              args.heartbeat_rotation_window))
        await stack.enter_async_context(startup.restored(kube, reconciler))
        await stack.enter_async_context(startup.allocating(reconciler))
        operator = await stack.enter_async_context(startup.kopf_handlers(reconciler, kube))
        bgp_writer = Writer(kube, recorder, lease.may_write)  # the BGP objects' Invalid condition and Events
        await stack.enter_async_context(bgpobjects.running(bgpobjects.BgpObjects(
            kube, bgp_writer, bgp_writer.set_object_status, args.lease_namespace)))
        why = await startup.until_stopped(held, operator)
        log.info("stopping (%s)", why)
        lost = held.lost
    log.info("stopped; lease %s", "lost" if lost else "released")
    return 1 if lost else 0


def readiness(lease: LeaderLease, reconciler: Reconciler) -> tuple[bool, str]:
    """/readyz: a standby is ready (it takes over when the lease is free); a leader once it has restored every
    assignment. A standby that said not-ready would never let a rolling update finish: the Deployment waits
    for the new pod to be ready before it stops the old one, which holds the lease."""
    if lease.acquired_at is None:
        return True, "standby: waiting for the leader lease"
    if not reconciler.restored.is_set():
        return False, "leader: restoring assignments"
    return True, "leader: ready"


def main(argv: list[str] | None = None) -> None:
    """Entry point of `ironlb-operator`."""
    args = parse_args(argv)
    setup_logging(args.log_format, args.log_level)
    assert handlers  # the import registers the kopf handlers
    sys.exit(asyncio.run(run(args)))
