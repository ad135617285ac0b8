"""`ironlb-operator`: take the leader Lease, then run the kopf handlers until the Lease is lost."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from kubernetes import client

from ironlb.api.constants import GROUP, IPADDRESSPOOLS, VERSION
from ironlb.common.events import EventRecorder, KubeEventSink
from ironlb.common.http import HealthServer
from ironlb.common.informer import Informer
from ironlb.common.kube import api_client
from ironlb.common.logs import setup_logging
from ironlb.operator import handlers, heartbeat_secret, key_rotation, metrics
from ironlb.operator.lease import LeaderLease, LeaseConfig
from ironlb.operator.reconciler import Reconciler
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
    p.add_argument("--metrics-host", default=env("IRONLB_METRICS_HOST", "0.0.0.0"))
    p.add_argument("--metrics-port", type=int, default=int(env("IRONLB_METRICS_PORT", "7472")))
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
    p.add_argument("--log-format", choices=["json", "text"], default=env("IRONLB_LOG_FORMAT", "json"))
    p.add_argument("--log-level", default=env("IRONLB_LOG_LEVEL", "INFO"))
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    """Wait to lead, then operate; return non-zero if leadership was lost.

    In order: health endpoint; the Lease, acquired and held from here on (renewals run while
    restore does); restore; the reconciler's workers; kopf. Cleaned up in reverse."""
    # API writes run in threads (sync client): the default executor (cores + 4) would cap bursts.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32, thread_name_prefix="api"))
    api = api_client(pool_size=32)
    owner = (await asyncio.to_thread(heartbeat_secret.deployment_owner, client.AppsV1Api(api), args.lease_namespace,
                                     args.owner_deployment)) if args.owner_deployment else ()
    lease = LeaderLease(client.CoordinationV1Api(api), LeaseConfig.for_duration(
        args.lease_namespace, args.lease_name, args.lease_duration), args.identity, owner=owner)
    recorder = EventRecorder(KubeEventSink(client.CoreV1Api(api)), COMPONENT, args.identity)
    metrics.count_events(recorder.stats)
    reconciler = Reconciler(Writer(api, recorder, lease.may_write), args.lb_class)

    def ready() -> tuple[bool, str]:
        if lease.acquired_at is None:
            return False, "standby: waiting for the leader lease"
        if not reconciler.restored.is_set():
            return False, "leader: restoring assignments"
        return True, "leader: ready"

    health = HealthServer(metrics.REGISTRY, ready, args.metrics_host, args.metrics_port)
    await health.start()
    await lease.acquire()
    metrics.LEADER.set(1)
    holder = asyncio.create_task(lease.hold())
    if args.heartbeat_secret:  # the leader, and only it, creates what is missing
        await asyncio.to_thread(heartbeat_secret.ensure, client.CoreV1Api(api), heartbeat_secret.HeartbeatSecret(
            args.lease_namespace, args.heartbeat_secret, args.heartbeat_secret_key, owner))
    rotation = asyncio.create_task(key_rotation.RotationLoop(
        client.CoreV1Api(api), args.lease_namespace, args.heartbeat_secret, args.heartbeat_secret_key,
        lease.may_write, heartbeat_secret.new_key, args.heartbeat_rotation_window).run()
        if args.heartbeat_secret else asyncio.sleep(0))
    services = await restore(api, reconciler)
    reconciler.start()
    kopf_ready: asyncio.Event = asyncio.Event()
    operator = asyncio.create_task(kopf.operator(
        clusterwide=True, standalone=True, memo=kopf.Memo(reconciler=reconciler), ready_flag=kopf_ready))
    await asyncio.wait({operator, holder, asyncio.create_task(kopf_ready.wait())},
                       return_when=asyncio.FIRST_COMPLETED)
    # Take SIGTERM/SIGINT back from kopf: its graceful stop waits 5 s for tasks, which only delays
    # the next leader. We stop allocating, hand the Lease over, then cancel kopf.
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shutdown.set)
    waiter = asyncio.create_task(shutdown.wait())
    done, _ = await asyncio.wait({operator, holder, waiter}, return_when=asyncio.FIRST_COMPLETED)
    lost = holder in done
    log.info("stopping (%s)", "leader lease lost" if lost else "shutdown requested")
    await reconciler.stop()
    services.stop()
    metrics.LEADER.set(0)
    if not lost:
        await asyncio.to_thread(lease.release)
    for task in (operator, holder, waiter, rotation):
        task.cancel()
    await asyncio.gather(operator, holder, waiter, rotation, return_exceptions=True)
    await asyncio.to_thread(recorder.close, 2.0)
    await health.stop()
    log.info("stopped; lease %s", "lost" if lost else "released")
    return 1 if lost else 0


async def restore(api: client.ApiClient, reconciler: Reconciler) -> Informer:
    """List pools, namespaces and every Service, and re-register every assignment before any new
    allocation (an IP never changes because the operator restarted); return the Service informer."""
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    timeout = {"_request_timeout": (5, 60)}
    pools = (await asyncio.to_thread(custom.list_cluster_custom_object, GROUP, VERSION, IPADDRESSPOOLS,
                                     **timeout))["items"]
    namespaces = await asyncio.to_thread(core.list_namespace, **timeout)
    loop = asyncio.get_running_loop()
    services = Informer("services", core.list_service_for_all_namespaces,
                        lambda event, obj: reconciler.service_event(slim_service(obj), deleted=event == "DELETED"),
                        loop)
    metrics.WATCH_GONE.set_function(lambda: services.counts["gone"])
    services.start()
    await services.synced.wait()  # every listed Service has been handed to the reconciler by now
    reconciler.restore(services=[slim_service(o) for o in services.known()], pools=pools,
                       namespaces={n.metadata.name: n.metadata.labels or {} for n in namespaces.items})
    return services


def slim_service(obj: dict[str, Any]) -> dict[str, Any]:
    """The parts of a Service the operator needs (keeps 10k Services small in memory)."""
    meta = obj.get("metadata") or {}
    keep = ("name", "namespace", "uid", "resourceVersion", "labels", "annotations")
    return {"metadata": {k: meta.get(k) for k in keep},
            "spec": obj.get("spec") or {},
            "status": {"loadBalancer": (obj.get("status") or {}).get("loadBalancer") or {}}}


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: object) -> None:
    """kopf settings: no peering, no kopf-posted events, quick watch restarts."""
    settings.peering.standalone = True
    settings.posting.enabled = False
    settings.scanning.disabled = True
    settings.watching.connect_timeout = 10
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    # One kopf worker per object lives until idle_timeout passes without events: a worker limit
    # would cap a burst at limit/idle_timeout objects per second, so leave it unlimited.
    settings.batching.idle_timeout = 1.0
    # Our handlers only hand events to the reconciler; waiting 2 s per watcher on exit only delays
    # the Lease hand-over to the next leader.
    settings.batching.exit_timeout = 0.2


def main(argv: list[str] | None = None) -> None:
    """Entry point of `ironlb-operator`."""
    args = parse_args(argv)
    setup_logging(args.log_format, args.log_level)
    assert handlers  # the import registers the kopf handlers
    sys.exit(asyncio.run(run(args)))
