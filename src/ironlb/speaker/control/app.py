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
import logging
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

from ironlb.common import heap
from ironlb.common.informer import Informer, ResourceListWatch
from ironlb.common.kubeapi import ENDPOINTSLICES, IP_ADDRESS_POOLS, L2_ADVERTISEMENTS, NODES, SERVICES, Client, Resource
from ironlb.common.throttle import Throttle
from ironlb.core.announce_gate import DEFAULT_BOUND_S
from ironlb.core.bgp.model import Desired
from ironlb.speaker.bgp.nodedrain import Drainable, NodeDrainTrigger
from ironlb.speaker.control.announcegate import AnnounceGate
from ironlb.speaker.control.bgpfeed import KINDS as BGP_KINDS
from ironlb.speaker.control.bgpfeed import BgpFeed, Component, bgp_running
from ironlb.speaker.control.bgpstatus import NodeStatusWriter
from ironlb.speaker.control.fastproc import FastProcess
from ironlb.speaker.control.fence_loop import Fencer
from ironlb.speaker.control.fencing import ApiLossPolicy
from ironlb.speaker.control.follow import Followed
from ironlb.speaker.control.forward import ForwardingSettings
from ironlb.speaker.control.forward import plan as forwarding
from ironlb.speaker.control.forward.health import HealthChecker
from ironlb.speaker.control.forward.kept import KeptForwarding
from ironlb.speaker.control.forward.nft import render
from ironlb.speaker.control.forward.programmer import NftablesProgrammer
from ironlb.speaker.control.interfaces import InterfaceTracker
from ironlb.speaker.control.join import KUBE_PROXY_METRICS_URL, wait_for_kube_proxy
from ironlb.speaker.control.lifetimes import (
    events_written,
    fencing,
    holds_watched,
    nftables_programmed,
    steering,
    watching,
)
from ironlb.speaker.control.presence import Presence
from ironlb.speaker.control.runtime import (
    Server,
    collect_less_often,
    serving,
    settle_runtime,
    unless_exited,
    yield_cpu_to_fast_plane,
)
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
from ironlb.speaker.state.endpoints import service_ports
from ironlb.speaker.state.incremental import IncrementalDesired
from ironlb.speaker.state.snapshot import ServiceInfo, Snapshot

log = logging.getLogger(__name__)


class Speaker:
    """One node's speaker."""

    def __init__(self, node: str, lb_class: str | None, api: Client, key: bytes | KeySet, port: int,
                 exclude_interfaces: list[str], fwd: ForwardingSettings | None = None,
                 kube_proxy_metrics_url: str = KUBE_PROXY_METRICS_URL, join_bound: float = 30.0,
                 heartbeat: tuple[float, float] = (INTERVAL_S, TIMEOUT_S), kernel_arp: bool = True,
                 on_api_loss: ApiLossPolicy = ApiLossPolicy.ANSWER, steering: SteeringSettings | None = None,
                 restart_hold_s: float = 0.0, topology: str = "mesh", ignore_exclude_lb: bool = False,
                 bgp: Component | None = None, bgp_namespace: str = "kube-system",
                 announce_wait: float = DEFAULT_BOUND_S, bgp_drain_on_cordon: bool = True) -> None:
        self.node, self.api, self.key, self.port = node, api, key, port
        # On the way out, peers answer for this node's IPs with its MACs this long, or until it is back (0: leave)
        self.restart_hold_s = restart_hold_s
        self.on_api_loss = on_api_loss  # silent and no API: keep answering or fence (speaker.fencing)
        self.kernel_arp = kernel_arp  # answer ARP requests in the kernel where the fast plane can load it
        self.heartbeat = heartbeat  # (interval, timeout), seconds
        self.topology = topology  # whom heartbeats go to: "mesh" or "ring" (fast/liveness/ringmode.Topology)
        self.kube_proxy_metrics_url, self.join_bound = kube_proxy_metrics_url, join_bound
        # New announcements of a Service that just changed wait for this node's kube-proxy to sync it.
        self.gate = AnnounceGate(kube_proxy_metrics_url, announce_wait, self._mark_changed)
        self.fwd = fwd or ForwardingSettings()
        self.health = HealthChecker(self._health_changed, interval=self.fwd.health_interval)
        self.nftables = NftablesProgrammer(self.fwd.nft)
        self.forwarding: forwarding.ForwardingPlan | None = None
        self.forwarding_kept = KeptForwarding(node, self.fwd.enabled, self.fwd.kube_proxy_healthz_port)
        # A confirmed death or a hand-over's end: the steerer sees it on its next pass and re-plans all.
        self.steerer = Steerer(steering or SteeringSettings(), self._mark_changed)
        self.view = IncrementalDesired(node, lb_class, ignore_exclude_lb=ignore_exclude_lb)
        self._heap = heap.HeapTrimmer()
        self.state: ClusterState = self.view.state
        self.fast: FastProcess | None = None  # started in run()
        self.status = StatusReporter(api, node, recheck=self._recheck_later)
        self.exclude = exclude_interfaces
        self.interfaces: dict[str, Interface] = {}
        self.own_macs = MacSet()
        self.followed = Followed(node)  # decisions and announcements by Service, as of the last pass
        self.passed = False  # a pass has run since the speaker joined
        self._everything = True  # the next pass decides every Service again
        self._forward_all = False  # the next pass re-plans every forwarded Service (a Node event, health)
        self._forwarded_alive: frozenset[str] = frozenset()  # the alive set the forwarding was planned with
        self.informers: list[Informer] = []
        self.fencer: Fencer | None = None
        self.presence: Presence | None = None  # set by main: without it, no self-fencing on silence
        self._no_carrier = False
        self._dirty = asyncio.Event()
        self._recheck: asyncio.TimerHandle | None = None
        # Frames from another MAC claiming our IPs, by interface (outlives the responders, which come and go).
        self.duplicates: dict[str, int] = {}
        self._duplicate_log = Throttle(10.0)
        self._loop: asyncio.AbstractEventLoop | None = None  # the control plane's, once running
        self._carrier_lost: Callable[[], bool] = lambda: False
        # BGP mode (--frr-socket-dir): the feed computes this node's Desired for FRR, the writer its BGPNodeStatus.
        self.bgp = BgpFeed(node, api, bgp_namespace, bgp, self.status, self._mark_changed,
                           drain_on_cordon=bgp_drain_on_cordon) if bgp else None
        if self.bgp is not None and self.gate.enabled:  # off: the feed's own default lets everything through
            self.bgp.may_announce = self.gate.may_announce
        self.bgp_status = NodeStatusWriter(api, node, bgp, lambda: self.bgp.desired if self.bgp else Desired()) \
            if bgp else None
        # BGP mode drains when this node's own Node says it is going (cordon, drain taints): speaker.bgp.nodedrain.
        self.drain_trigger = NodeDrainTrigger(node, bgp, bgp_drain_on_cordon) if isinstance(bgp, Drainable) else None

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
        owner = next(iter(self.view.table.by_ip.get(ip) or ()), None)
        self.status.duplicate(self.state.services.get(owner.service) if owner else None, ip, mac, ifname)

    def terminating(self) -> None:
        """SIGTERM: BGP mode's drain starts; the Services' BGPAnnounced conditions this node writes say so."""
        if self.bgp is not None:
            self.bgp.terminating(self.view)

    def mark_dirty(self) -> None:
        """Something every Service's status reads changed (the interfaces): a full pass soon."""
        self._everything = True
        self._dirty.set()

    def _mark_changed(self) -> None:
        """Watch events or the alive set changed: a pass soon, over what they touched (changes coalesce)."""
        self._dirty.set()

    def _health_changed(self) -> None:
        self._forward_all = True  # a node's health check: every forwarded Service reads it
        self._mark_changed()

    def _recheck_later(self, delay: float) -> None:
        # One timer at a time: when it fires, the pass it causes asks again for whatever is still pending.
        loop = asyncio.get_running_loop()
        if self._recheck is None or self._recheck.when() <= loop.time():
            self._recheck = loop.call_later(delay, self._mark_changed)

    def _on_event(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        if kind == "nodes" and self.drain_trigger is not None:
            self.drain_trigger.on_node(event, obj)
        if self.bgp is not None and kind in BGP_KINDS:
            self.bgp.on_event(kind, event, obj)
            self._mark_changed()
            return
        self.view.apply(kind, event, obj)
        self.gate.on_event(kind, event, obj)
        if self.bgp is not None:
            self.bgp.on_view_event(kind, str((obj.get("metadata") or {}).get("name", "")), self.view)
        if kind == "nodes" and self.fast is not None:
            self.fast.set_peers(self.state.peers(), self.state.peer_addresses())
        # Every forwarded Service reads the Nodes (addresses, conditions): all of them re-planned.
        self._forward_all = self._forward_all or kind == "nodes"
        self._mark_changed()

    def _on_interfaces(self, interfaces: dict[str, Interface]) -> None:
        # Pod veths come and go all day: say so only when the default set changes.
        level = logging.INFO if _defaults(interfaces) != _defaults(self.interfaces) else logging.DEBUG
        log.log(level, "usable interfaces: %s", ", ".join(_defaults(interfaces)) or "none")
        self.interfaces = interfaces
        if self.fast is not None:
            self.fast.set_interfaces(interfaces, self.own_macs.macs)
        self.mark_dirty()

    def _on_alive(self, _: frozenset[str]) -> None:
        # The fast plane has already moved the IPs; status and forwarding follow here, for the IPs touched.
        self._mark_changed()

    def recompute(self) -> None:
        """Publish the table the events since the last pass made; bring status and nftables in line for the
        Services it changed, those the alive set's change touches, and those a component asked to see again."""
        assert self.fast is not None
        alive = self.fast.alive
        self.view.set_alive(alive)  # the cut rankings' tails follow it
        table = self.view.publish()
        released = self.gate.take_released()  # held new announcements that may go now
        may_claim = (lambda ip, entries: self.gate.may_claim(self.node, ip, entries)) if self.gate.enabled else None
        self.fast.publish(table, may_claim,
                          [e.ip for key in released for e in table.services.get(key) or ()])
        keys = self._touched(alive, released)
        changed = self.followed.follow(table, alive, keys)
        if self.bgp is not None:  # BGP mode reads the same Services, whatever L2 decided for them
            self.bgp.follow(self.view, None if keys is None else changed, alive)
        snapshot = self.view.snapshot(alive)
        forwarded = self._forward(snapshot, None if keys is None else changed)
        self.steerer.update(snapshot, self._pairs, self._service_ports, self.view.targets,
                            None if keys is None else changed)
        status_keys = changed if forwarded is None else sorted(forwarded)
        self.status.report(self.followed.decisions_of(status_keys), self.state.services, alive,
                           _defaults(self.interfaces), self.forwarding.services)
        self.status.forget(key for key in changed if key not in self.followed.decisions)
        self.passed = True

    def _forward(self, snapshot: Snapshot, changed: list[str] | None) -> set[str] | None:
        """Re-plan the NodePort forwarding of the Services CHANGED (None: of every Service), and of every
        forwarded one when what they all read changed (Nodes, health, the alive set); the Services re-planned."""
        keys = None if changed is None else set(changed)
        if keys is not None and (self._forward_all or snapshot.alive != self._forwarded_alive):
            keys |= self.forwarding_kept.forwarded_keys()
        if self.forwarding_kept.update(snapshot, self.followed.vips_of, keys, self.health.failing):
            self.health.set_probes(self.forwarding_kept.probes())
        self._forward_all, self._forwarded_alive = False, snapshot.alive
        self.forwarding = self.forwarding_kept.plan
        if self.fwd.enabled:
            self.nftables.update(render(self.forwarding))
        return keys

    def _touched(self, alive: frozenset[str], released: set[str]) -> set[str] | None:
        """The Services a pass decides again (None: every one, when something all of them read changed)."""
        keys = self.view.take_changed() | self.status.take_rechecks() | released
        if self._everything:
            self._everything = False
            return None
        return keys | self.followed.touched_by_alive(alive, self.view.keeping)

    def _pairs(self, keys: Collection[str] | None) -> list[tuple[ServiceInfo, str]]:
        """The (Service, VIP) pairs this node announces of the Services KEYS (None: all), in key order."""
        wanted = sorted(self.followed.decisions) if keys is None else sorted(keys)
        return [(info, ip) for key in wanted if (info := self.view.infos.get(key)) is not None
                for ip in self.followed.vips_of(key)]

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
        collect_less_often()
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(events_written(self.status))
            await stack.enter_async_context(self._interfaces())
            if server is not None:  # left after the fast plane: peers hear our LEAVE before metrics go
                await stack.enter_async_context(serving(server))
            await stack.enter_async_context(self._fast_plane())
            await stack.enter_async_context(holds_watched(self.fast, self.state.peers, self.steerer))
            await stack.enter_async_context(nftables_programmed(self.nftables, self.fwd.enabled, self.health))
            await stack.enter_async_context(steering(self.steerer))
            self.informers = self._new_informers()
            await stack.enter_async_context(watching(self.informers))
            await stack.enter_async_context(bgp_running(self.bgp, self.bgp_status))
            stack.push_async_callback(self.gate.close)
            await unless_exited(self._join(), self.fast)
            self.fencer = await stack.enter_async_context(fencing(
                self.fast, self.presence, self._has_carrier, self._rejoin, self.node, self.on_api_loss))
            await unless_exited(self._recompute_when_dirty(), self.fast)

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

    def _new_informers(self) -> list[Informer]:
        kinds = {"nodes": NODES, "services": SERVICES, "slices": ENDPOINTSLICES, "pools": IP_ADDRESS_POOLS,
                 "advertisements": L2_ADVERTISEMENTS} | (BGP_KINDS if self.bgp is not None else {})
        return [self._informer(kind, resource) for kind, resource in kinds.items()]

    async def _join(self) -> None:
        """Synced with the API and kube-proxy synced (or given up on): join the election."""
        assert self.fast is not None
        kube_proxy = asyncio.ensure_future(wait_for_kube_proxy(self.kube_proxy_metrics_url, self.join_bound))
        try:  # a SIGTERM while still waiting to join cleans up too
            await asyncio.gather(*(i.synced.wait() for i in self.informers))
            log.info("synced; node %s, interfaces %s", self.node, ", ".join(_defaults(self.interfaces)))
            self.gate.armed = True  # from here on a Service event is a change kube-proxy may not have yet
            reason = await kube_proxy
        finally:
            kube_proxy.cancel()
        self.view.set_alive(self.fast.alive)
        self.fast.publish(self.view.publish())  # the table is on the fast plane before we count ourselves
        settle_runtime()
        await self.fast.join()
        log.info("joined the election (%s)", reason.value)

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
        if not self.passed or self.fast is None:
            return False, "not joined yet (waiting for the API sync and kube-proxy's first sync)"
        return True, f"announcing {self.fast.announced_pairs()} (ip, interface) pairs"


def _defaults(interfaces: dict[str, Interface]) -> tuple[str, ...]:
    """Names of the interfaces answered on when an L2Advertisement names none."""
    return tuple(sorted(name for name, i in interfaces.items() if i.by_default))
