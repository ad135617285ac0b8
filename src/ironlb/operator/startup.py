"""The operator's components as async contexts, in the order `main.run` enters them.

Each context starts one component and, on exit (SIGTERM, a lost Lease or an error), stops it, so
the exit stack in `main.run` cleans up in exactly the reverse order of start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import kopf

from ironlb.common.events import EventRecorder
from ironlb.common.http import HealthServer
from ironlb.common.informer import Informer, ResourceListWatch
from ironlb.common.kubeapi import IP_ADDRESS_POOLS, L2_ADVERTISEMENTS, NAMESPACES, SERVICES, ApiError, Client, Resource
from ironlb.operator import handlers, heartbeat_secret, key_rotation, metrics
from ironlb.operator.lease import LeaderLease
from ironlb.operator.reconciler import Reconciler
from ironlb.operator.services import slim_service

log = logging.getLogger("ironlb.operator")
LIST_TIMEOUT = (5.0, 60.0)  # (connect, read) seconds: a whole list of namespaces may take a while to send
# How long the start-up lists wait out an API server that is not ready for them yet (a CRD installed in
# the same helm release has no storage for a moment: 429 "storage is (re)initializing"); then the
# operator exits and its pod restarts, as it should for an API server that stays away.
STARTUP_WAIT_S = 60.0
STARTUP_PAUSE_S = 1.0


@contextlib.asynccontextmanager
async def events(recorder: EventRecorder) -> AsyncIterator[EventRecorder]:
    """The Event recorder; on exit, what is still queued gets two seconds to be written."""
    metrics.count_events(recorder.stats)
    try:
        yield recorder
    finally:
        await asyncio.to_thread(recorder.close, 2.0)


@contextlib.asynccontextmanager
async def health(server: HealthServer) -> AsyncIterator[HealthServer]:
    """/healthz, /readyz and /metrics, up before anything else so a standby reports why it waits."""
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class Leadership:
    """The held Lease: `holder` ends when it is lost."""

    lease: LeaderLease
    holder: asyncio.Task[Any]

    @property
    def lost(self) -> bool:
        """True once renewal failed past the renew deadline, or another replica holds it."""
        return self.holder.done() and not self.holder.cancelled()


@contextlib.asynccontextmanager
async def leadership(lease: LeaderLease) -> AsyncIterator[Leadership]:
    """Wait for the Lease, then keep renewing it; on a clean exit hand it over at once."""
    await lease.acquire()
    metrics.LEADER.set(1)
    held = Leadership(lease, asyncio.create_task(lease.hold(), name="lease"))
    try:
        yield held
    finally:
        metrics.LEADER.set(0)
        lost = held.lost
        held.holder.cancel()
        await asyncio.gather(held.holder, return_exceptions=True)
        if not lost:
            await asyncio.to_thread(lease.release)


@contextlib.asynccontextmanager
async def heartbeat_keys(kube: Client, secret: heartbeat_secret.HeartbeatSecret | None,
                         may_write: Callable[[], bool], window: float) -> AsyncIterator[None]:
    """Create the speakers' heartbeat Secret when absent, then carry out the key rotations asked
    for on it (annotation ironlb.io/rotate). The leader, and only it, does either."""
    if secret is None:
        yield
        return
    await asyncio.to_thread(heartbeat_secret.ensure, kube, secret)
    rotation = key_rotation.RotationLoop(kube, secret.namespace, secret.name, secret.key, may_write,
                                         heartbeat_secret.new_key, window)
    task = asyncio.create_task(rotation.run(), name="key-rotation")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def service_informer(kube: Client, reconciler: Reconciler) -> Informer:
    """The Service informer feeding RECONCILER (not started).

    Services are slimmed as they arrive, to what the reconciler reads, and kept once, as the
    reconciler's views: the informer holds only versions (to diff a relist), not a second copy."""
    return Informer("services", ResourceListWatch(kube, SERVICES),
                    lambda event, obj: reconciler.service_event(obj, deleted=event == "DELETED"),
                    asyncio.get_running_loop(), keep_objects=False,
                    transform=functools.partial(slim_service, lb_class=reconciler.state.lb_class))


async def listed(kube: Client, resource: Resource, wait_s: float = STARTUP_WAIT_S,
                 pause_s: float = STARTUP_PAUSE_S) -> list[dict[str, Any]]:
    """RESOURCE's items, waiting up to WAIT_S while the API server answers that it is not ready yet."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return (await asyncio.to_thread(kube.list, resource, timeout=LIST_TIMEOUT))["items"]
        except (ApiError, OSError) as exc:
            if not _not_ready_yet(exc) or time.monotonic() + pause_s > deadline:
                raise
            log.warning("listing %s: %s; trying again", resource.plural, exc)
        await asyncio.sleep(pause_s)


def _not_ready_yet(exc: Exception) -> bool:
    """Whether EXC says the API server may answer soon: throttled, unavailable, or not reachable yet."""
    return not isinstance(exc, ApiError) or exc.status == 429 or exc.status >= 500


@contextlib.asynccontextmanager
async def restored(kube: Client, reconciler: Reconciler) -> AsyncIterator[Informer]:
    """List pools, advertisements, namespaces and every Service, and re-register every assignment before any new
    allocation (an IP never changes because the operator restarted); yield the Service informer."""
    pools = await listed(kube, IP_ADDRESS_POOLS)
    advertisements = await listed(kube, L2_ADVERTISEMENTS)
    namespaces = await listed(kube, NAMESPACES)
    services = service_informer(kube, reconciler)
    metrics.WATCH_GONE.set_function(lambda: services.counts["gone"])
    services.start()
    try:
        await services.synced.wait()  # every listed Service has been handed to the reconciler by now
        reconciler.restore(services=(), pools=pools,
                           namespaces={n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in namespaces},
                           advertisements=advertisements)
        yield services
    finally:
        services.stop()


@contextlib.asynccontextmanager
async def allocating(reconciler: Reconciler) -> AsyncIterator[Reconciler]:
    """The reconciler's workers; on exit no new allocation starts and in-flight writes finish."""
    reconciler.start()
    try:
        yield reconciler
    finally:
        await reconciler.stop()


@contextlib.asynccontextmanager
async def kopf_handlers(reconciler: Reconciler, kube: Client) -> AsyncIterator[asyncio.Task[Any]]:
    """kopf's watches of pools and namespaces, feeding the reconciler; yields once they run. kopf logs in
    with KUBE's cluster configuration (handlers.login)."""
    ready = asyncio.Event()
    memo = kopf.Memo(reconciler=reconciler, cluster=kube.config)
    operator = asyncio.create_task(kopf.operator(
        registry=handlers.REGISTRY, clusterwide=True, standalone=True, memo=memo, ready_flag=ready), name="kopf")
    started = asyncio.create_task(ready.wait())
    try:
        await asyncio.wait({operator, started}, return_when=asyncio.FIRST_COMPLETED)
        yield operator
    finally:
        started.cancel()
        operator.cancel()
        await asyncio.gather(operator, return_exceptions=True)


async def until_stopped(held: Leadership, operator: asyncio.Task[Any]) -> str:
    """Wait for SIGTERM/SIGINT, a lost Lease, or kopf ending; say which.

    The signals are taken back from kopf (installed after it started): its graceful stop waits
    seconds for tasks, which only delays the next leader."""
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shutdown.set)
    waiter = asyncio.create_task(shutdown.wait())
    try:
        await asyncio.wait({operator, held.holder, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if held.holder.done():
        return "leader lease lost"
    return "shutdown requested" if shutdown.is_set() else "kopf stopped"
