"""The speaker: watches -> incremental desired state -> ranking table -> fast plane (heartbeats, responders).

Two planes. The control plane (this asyncio loop) runs the informers, keeps the ranking table up to
date incrementally, and follows with status, Events and nftables. The fast plane (a process of its
own, `fast.child`, driven through `control.fastproc`) owns heartbeats and the ARP/NDP responders and
decides ownership from this node's claims and the alive set. `run` enters one context per component
and leaves them in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Protocol

from ironlb.common import heap
from ironlb.common.informer import Informer, ResourceListWatch
from ironlb.common.kubeapi import ENDPOINTSLICES, IP_ADDRESS_POOLS, L2_ADVERTISEMENTS, NODES, SERVICES, Client, Resource
from ironlb.common.throttle import Throttle
from ironlb.speaker.control.fastproc import FastProcess
from ironlb.speaker.control.fence_loop import Fencer
from ironlb.speaker.control.fencing import ApiLossPolicy, Fence
from ironlb.speaker.control.forward import ForwardingSettings
from ironlb.speaker.control.forward import plan as forwarding
from ironlb.speaker.control.forward.health import HealthChecker
from ironlb.speaker.control.forward.nft import render
from ironlb.speaker.control.forward.programmer import NftablesProgrammer
from ironlb.speaker.control.holds import HoldWatch
from ironlb.speaker.control.interfaces import InterfaceTracker
from ironlb.speaker.control.join import KUBE_PROXY_METRICS_URL, wait_for_kube_proxy
from ironlb.speaker.control.presence import Presence
from ironlb.speaker.control.status import StatusReporter
from ironlb.speaker.control.steer import SteeringSettings
from ironlb.speaker.control.steer.plan import ServicePorts
from ironlb.speaker.control.steer.steerer import Steerer
from ironlb.speaker.fast.announcer import Interface
from ironlb.speaker.fast.l2.responder import MacSet
from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S
from ironlb.speaker.fast.liveness.protocol import KeySet
from ironlb.speaker.state import slim
from ironlb.speaker.state.cluster import ClusterState
from ironlb.speaker.state.desired import Desired
from ironlb.speaker.state.endpoints import service_ports
from ironlb.speaker.state.incremental import IncrementalDesired

log = logging.getLogger(__name__)
# Fewer, cheaper collections: everything alive after start-up is frozen out of the collector's scans.
GC_THRESHOLDS = (20_000, 50, 100)
CONTROL_NICENESS = 5  # the control plane's threads: a third of the fast plane's CPU weight (335 against 1024)


class Server(Protocol):
    """The health/metrics server (started and stopped with the speaker)."""

    async def start(self) -> None:
        """Start serving."""

    async def stop(self) -> None:
        """Stop serving."""


class Speaker:
    """One node's speaker."""

    def __init__(self, node: str, lb_class: str | None, api: Client, key: bytes | KeySet, port: int,
                 exclude_interfaces: list[str], fwd: ForwardingSettings | None = None,
                 kube_proxy_metrics_url: str = KUBE_PROXY_METRICS_URL, join_bound: float = 30.0,
                 heartbeat: tuple[float, float] = (INTERVAL_S, TIMEOUT_S), kernel_arp: bool = True,
                 on_api_loss: ApiLossPolicy = ApiLossPolicy.ANSWER, steering: SteeringSettings | None = None,
                 restart_hold_s: float = 0.0, topology: str = "mesh") -> None:
        self.node, self.api, self.key, self.port = node, api, key, port
        # On the way out, peers answer for this node's IPs with its MACs this long, or until it is back (0: leave)
        self.restart_hold_s = restart_hold_s
        self.on_api_loss = on_api_loss  # silent and no API: keep answering or fence (speaker.fencing)
        self.kernel_arp = kernel_arp  # answer ARP requests in the kernel where the fast plane can load it
        self.heartbeat = heartbeat  # (interval, timeout), seconds
        self.topology = topology  # whom heartbeats go to: "mesh" or "ring" (fast/liveness/ringmode.Topology)
        self.kube_proxy_metrics_url, self.join_bound = kube_proxy_metrics_url, join_bound
        self.fwd = fwd or ForwardingSettings()
        self.health = HealthChecker(self.mark_dirty, interval=self.fwd.health_interval)
        self.nftables = NftablesProgrammer(self.fwd.nft)
        self.forwarding: forwarding.ForwardingPlan | None = None
        self.steerer = Steerer(steering or SteeringSettings(), self.mark_dirty)
        self.view = IncrementalDesired(node, lb_class)
        self._heap = heap.HeapTrimmer()
        self.state: ClusterState = self.view.state
        self.fast: FastProcess | None = None  # started in run()
        self.status = StatusReporter(api, node, recheck=self._recheck_later)
        self.exclude = exclude_interfaces
        self.interfaces: dict[str, Interface] = {}
        self.own_macs = MacSet()
        self.desired: Desired | None = None
        self.informers: list[Informer] = []
        self.fencer: Fencer | None = None
        self.presence: Presence | None = None  # set by main: without it, no self-fencing on silence
        self._no_carrier = False
        self._dirty = asyncio.Event()
        self._ip_owner: dict[str, str] = {}
        self._recheck: asyncio.TimerHandle | None = None
        # Frames from another MAC claiming our IPs, by interface (outlives the responders, which come and go).
        self.duplicates: dict[str, int] = {}
        self._duplicate_log = Throttle(10.0)
        self._loop: asyncio.AbstractEventLoop | None = None  # the control plane's, once running
        self._carrier_lost: Callable[[], bool] = lambda: False

    def set_key(self, keys: KeySet) -> None:
        """Heartbeat keys changed (a rotation): the fast plane signs and checks with them from now on."""
        self.key = keys
        if self.fast is not None:
            self.fast.set_key(keys)

    def reannounce(self) -> None:
        """One more gratuitous burst for everything owned, sent by the fast plane."""
        if self.fast is not None:
            self.fast.reannounce()

    def _duplicate(self, ip: str, mac: str, ifname: str, frames: int = 1) -> None:
        # Anyone on the LAN can send these as fast as they like: count each, log and record a few.
        self.duplicates[ifname] = self.duplicates.get(ifname, 0) + frames
        if (suppressed := self._duplicate_log.allow((ip, ifname))) is not None:
            log.warning("another host (%s) answers for %s on %s (%d more such frames since the last warning)",
                        mac, ip, ifname, suppressed)
        owner = self._ip_owner.get(ip)
        self.status.duplicate(self.state.services.get(owner) if owner else None, ip, mac, ifname)

    def mark_dirty(self) -> None:
        """Something changed: recompute soon (changes arriving together are coalesced)."""
        self._dirty.set()

    def _recheck_later(self, delay: float) -> None:
        # One timer at a time: when it fires, the pass it causes asks again for whatever is still pending.
        loop = asyncio.get_running_loop()
        if self._recheck is None or self._recheck.when() <= loop.time():
            self._recheck = loop.call_later(delay, self.mark_dirty)

    def _on_event(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        self.view.apply(kind, event, obj)
        if kind == "nodes" and self.fast is not None:
            self.fast.set_peers(self.state.peers(), self.state.peer_addresses())
        self.mark_dirty()

    def _on_interfaces(self, interfaces: dict[str, Interface]) -> None:
        # Pod veths come and go all day: say so only when the default set changes.
        level = logging.INFO if _defaults(interfaces) != _defaults(self.interfaces) else logging.DEBUG
        log.log(level, "usable interfaces: %s", ", ".join(_defaults(interfaces)) or "none")
        self.interfaces = interfaces
        if self.fast is not None:
            self.fast.set_interfaces(interfaces, self.own_macs.macs)
        self.mark_dirty()

    def _on_alive(self, _: frozenset[str]) -> None:
        # The fast plane has already moved the IPs; status and forwarding follow here.
        self.mark_dirty()

    def recompute(self) -> None:
        """Publish the table the events since the last pass made, then bring status and nftables in line."""
        assert self.fast is not None
        table = self.view.publish()
        self.fast.publish(table)
        alive = self.fast.alive
        self.desired = table.desired(alive)
        self._ip_owner = {d.ip: d.service for d in self.desired.decisions}
        announced = list(self.desired.announcements)
        snapshot = self.view.snapshot(alive)
        self.health.set_probes(forwarding.probes(snapshot, announced, self.fwd.kube_proxy_healthz_port))
        self.forwarding = forwarding.plan(snapshot, self.node, announced, self.health.failing,
                                          self.fwd.kube_proxy_healthz_port)
        if self.fwd.enabled:
            self.nftables.update(render(self.forwarding))
        else:
            self.forwarding = forwarding.ForwardingPlan((), (), {
                k: forwarding.ServicePlan(k, {}, disabled=True) for k in self.forwarding.services})
        self.steerer.update(snapshot, announced, self._service_ports, self.view.targets)
        self.status.report(self.desired.decisions, self.state.services, alive, _defaults(self.interfaces),
                           self.forwarding.services)

    def _service_ports(self, key: str) -> ServicePorts:
        return service_ports(self.state.services.get(key) or {})

    def _informer(self, name: str, resource: Resource) -> Informer:
        # Each kind is kept as the speaker reads it (slim.py): memory grows with what is read, not what is sent.
        # The view holds every object; the informer keeps only versions, to diff its relists.
        return Informer(name, ResourceListWatch(self.api, resource), lambda ev, obj: self._on_event(name, ev, obj),
                        asyncio.get_running_loop(), transform=slim.TRANSFORMS.get(name), keep_objects=False)

    async def run(self, server: Server | None = None) -> None:
        """Run until cancelled; every component is stopped, in reverse order, on the way out."""
        self._loop = asyncio.get_running_loop()
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self._status())
            await stack.enter_async_context(self._interfaces())
            if server is not None:  # left after the fast plane: peers hear our LEAVE before metrics go
                await stack.enter_async_context(_serving(server))
            await stack.enter_async_context(self._fast_plane())
            await stack.enter_async_context(self._holds())
            await stack.enter_async_context(self._nftables())
            await stack.enter_async_context(self._steering())
            await stack.enter_async_context(self._informers())
            await _unless_exited(self._join(), self.fast)
            await stack.enter_async_context(self._fencing())
            await _unless_exited(self._recompute_when_dirty(), self.fast)

    @contextlib.asynccontextmanager
    async def _status(self) -> AsyncIterator[None]:
        try:
            yield
        finally:  # Events still queued are written (bounded) before the speaker exits
            await asyncio.to_thread(self.status.events.close)

    @contextlib.asynccontextmanager
    async def _interfaces(self) -> AsyncIterator[None]:
        tracker = InterfaceTracker(asyncio.get_running_loop(), self._on_interfaces, self.exclude, self.own_macs)
        self.interfaces = await asyncio.to_thread(tracker.start)
        self._carrier_lost = lambda: tracker.no_carrier
        try:
            yield
        finally:
            tracker.stop()

    @contextlib.asynccontextmanager
    async def _fast_plane(self) -> AsyncIterator[None]:
        interval, timeout = self.heartbeat
        self.fast = FastProcess(self.node, self.key, self.port, self._on_alive, self._duplicate,
                                interval=interval, timeout=timeout, kernel_arp=self.kernel_arp,
                                restart_hold_s=self.restart_hold_s, topology=self.topology)
        await self.fast.start()
        yield_cpu_to_fast_plane()
        self.fast.set_interfaces(self.interfaces, self.own_macs.macs)
        try:
            yield
        finally:  # stop answering and say goodbye to peers before anything else goes
            # A forwarded VIP's traffic needs this speaker's nftables table, which goes with it: not held.
            forwarded = frozenset(f.vip for f in self.forwarding.forwards) if self.forwarding else frozenset()
            await self.fast.close(excluded=forwarded)

    @contextlib.asynccontextmanager
    async def _holds(self) -> AsyncIterator[None]:
        assert self.fast is not None
        watch = HoldWatch(self.fast, self.state.peers, self.steerer.settings.probe_port,
                          self.steerer.settings.probe_timeout)
        self.fast.on_held = watch.follow
        try:
            yield
        finally:
            await watch.close()

    @contextlib.asynccontextmanager
    async def _nftables(self) -> AsyncIterator[None]:
        # The programmer's first pass also clears a table a killed speaker left behind.
        loop = asyncio.get_running_loop()
        programmer = loop.create_task(self.nftables.run() if self.fwd.enabled else asyncio.sleep(0))
        try:
            yield
        finally:
            programmer.cancel()
            await asyncio.gather(programmer, self.health.close(), return_exceptions=True)

    @contextlib.asynccontextmanager
    async def _steering(self) -> AsyncIterator[None]:
        # Its first pass also clears a table a killed speaker left behind.
        run = self.steerer.run() if self.steerer.settings.enabled else asyncio.sleep(0)
        programmer = asyncio.get_running_loop().create_task(run)
        try:
            yield
        finally:
            programmer.cancel()
            await asyncio.gather(programmer, self.steerer.close(), return_exceptions=True)

    @contextlib.asynccontextmanager
    async def _informers(self) -> AsyncIterator[None]:
        self.informers = [
            self._informer("nodes", NODES),
            self._informer("services", SERVICES),
            self._informer("slices", ENDPOINTSLICES),
            self._informer("pools", IP_ADDRESS_POOLS),
            self._informer("advertisements", L2_ADVERTISEMENTS),
        ]
        for informer in self.informers:
            informer.start()
        try:
            yield
        finally:
            for informer in self.informers:
                informer.stop()

    async def _join(self) -> None:
        """Synced with the API and kube-proxy synced (or given up on): join the election."""
        assert self.fast is not None
        kube_proxy = asyncio.ensure_future(wait_for_kube_proxy(self.kube_proxy_metrics_url, self.join_bound))
        try:  # a SIGTERM while still waiting to join cleans up too
            await asyncio.gather(*(i.synced.wait() for i in self.informers))
            log.info("synced; node %s, interfaces %s", self.node, ", ".join(_defaults(self.interfaces)))
            reason = await kube_proxy
        finally:
            kube_proxy.cancel()
        self.fast.publish(self.view.publish())  # the table is on the fast plane before we count ourselves
        settle_runtime()
        await self.fast.join()
        log.info("joined the election (%s)", reason.value)

    @contextlib.asynccontextmanager
    async def _fencing(self) -> AsyncIterator[None]:
        """Self-fencing (fencing.py): no carrier on the announce links, or cut off from every peer."""
        if self.presence is None or self.fast is None:
            yield
            return
        self.fencer = Fencer(self.fast, self.presence, self._has_carrier, self._rejoin,
                             fence=Fence(me=self.node, on_api_loss=self.on_api_loss))
        tasks = asyncio.gather(self.presence.run(), self.fencer.run())
        try:
            yield
        finally:
            tasks.cancel()
            await asyncio.gather(tasks, return_exceptions=True)

    def _has_carrier(self) -> bool:
        return bool(_defaults(self.interfaces)) or not self._carrier_lost()

    async def _rejoin(self) -> None:
        """Back from a fence: through the join gate again (kube-proxy synced, peers hear us first)."""
        assert self.fast is not None
        reason = await wait_for_kube_proxy(self.kube_proxy_metrics_url, self.join_bound)
        await self.fast.join()
        log.info("rejoined the election after fencing (%s)", reason.value)

    async def _recompute_when_dirty(self) -> None:
        loop = asyncio.get_running_loop()
        elapsed = 0.0
        self.mark_dirty()
        while True:
            await self._dirty.wait()
            # Let related events land together; under a flood (10k Services created) this also
            # caps recomputation at about half a core: the pause grows with the last pass's cost.
            await asyncio.sleep(max(0.005, elapsed))
            self._dirty.clear()
            started = loop.time()
            self.recompute()
            elapsed = loop.time() - started
            self._heap.maybe()  # after a relist's pass, its freed pages go back

    def ready(self) -> tuple[bool, str]:
        """Readiness: synced with the API at least once (asked every second by the health server's beat)."""
        if self.desired is None or self.fast is None:
            return False, "not joined yet (waiting for the API sync and kube-proxy's first sync)"
        return True, f"announcing {self.fast.announced_pairs()} (ip, interface) pairs"


def settle_runtime() -> None:
    """After start-up: freeze what exists out of the collector's scans, collect less often, return free pages."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    heap.trim()


def yield_cpu_to_fast_plane() -> None:
    """Where the two planes compete for a CPU, the fast plane wins: the control plane's threads run at
    a lower priority (raising one's own niceness needs no privilege; the fast plane's process keeps its own)."""
    now = os.nice(0)
    if now < CONTROL_NICENESS:
        try:
            os.nice(CONTROL_NICENESS - now)  # this thread, and the threads it starts from now on
        except OSError:
            log.debug("cannot lower the control plane's CPU priority")


async def _unless_exited(work: Coroutine[Any, Any, None], fast: FastProcess | None) -> None:
    """Run WORK; if the fast plane's process ends meanwhile, stop it and raise that instead."""
    if fast is None or fast.exited is None:
        await work
        return
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait({task, fast.exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:  # cancelled from outside (SIGTERM), or the process ended: WORK stops either way
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled() and fast.exited.done():
        fast.exited.result()  # raises what ended the process
    task.result()


@contextlib.asynccontextmanager
async def _serving(server: Server) -> AsyncIterator[None]:
    await server.start()
    try:
        yield
    finally:
        await server.stop()


def _defaults(interfaces: dict[str, Interface]) -> tuple[str, ...]:
    """Names of the interfaces answered on when an L2Advertisement names none."""
    return tuple(sorted(name for name, i in interfaces.items() if i.by_default))
