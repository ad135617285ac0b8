"""The speaker: watches -> snapshot -> desired (pure) -> announcer (diff) -> responders (packets)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubernetes import client

from ironlb.api.constants import GROUP, IPADDRESSPOOLS, L2ADVERTISEMENTS, VERSION
from ironlb.common.informer import Informer
from ironlb.common.throttle import Throttle
from ironlb.speaker.announcer import Announcer, Interface
from ironlb.speaker.cluster import ClusterState
from ironlb.speaker.desired import Desired, compute
from ironlb.speaker.fence_loop import Fencer
from ironlb.speaker.forward import ForwardingSettings
from ironlb.speaker.forward import plan as forwarding
from ironlb.speaker.forward.health import HealthChecker
from ironlb.speaker.forward.nft import render
from ironlb.speaker.forward.programmer import NftablesProgrammer
from ironlb.speaker.interfaces import InterfaceTracker, MacSet
from ironlb.speaker.join import KUBE_PROXY_METRICS_URL, wait_for_kube_proxy
from ironlb.speaker.l2.io import DropCounter, RawPacketIO
from ironlb.speaker.l2.responder import Responder
from ironlb.speaker.liveness.transport import Liveness
from ironlb.speaker.presence import Presence
from ironlb.speaker.status import StatusReporter

log = logging.getLogger(__name__)


class Speaker:
    """One node's speaker."""

    def __init__(self, node: str, lb_class: str | None, api: client.ApiClient, key: bytes, port: int,
                 exclude_interfaces: list[str], fwd: ForwardingSettings | None = None,
                 kube_proxy_metrics_url: str = KUBE_PROXY_METRICS_URL, join_bound: float = 30.0) -> None:
        self.node, self.api = node, api
        self.kube_proxy_metrics_url, self.join_bound = kube_proxy_metrics_url, join_bound
        self.fwd = fwd or ForwardingSettings()
        self.health = HealthChecker(self.mark_dirty, interval=self.fwd.health_interval)
        self.nftables = NftablesProgrammer(self.fwd.nft)
        self.forwarding: forwarding.ForwardingPlan | None = None
        self.state = ClusterState(lb_class=lb_class)
        self.announcer = Announcer(self._make_responder)
        self.liveness = Liveness(node, key, port, lambda _: self.mark_dirty())
        self.status = StatusReporter(api, node, recheck=self._recheck_later)
        self.exclude = exclude_interfaces
        self.interfaces: dict[str, Interface] = {}
        self.own_macs = MacSet()
        self.desired: Desired | None = None
        self.informers: list[Informer] = []
        self.fencer: Fencer | None = None
        self.presence: Presence | None = None  # set by main: without it, no self-fencing on silence
        self._dirty = asyncio.Event()
        self._ip_owner: dict[str, str] = {}
        self._recheck: asyncio.TimerHandle | None = None
        # Frames from another MAC claiming our IPs, by interface (outlives the responders, which come and go).
        self.duplicates: dict[str, int] = {}
        self.kernel_drops = DropCounter()  # frames the kernel dropped before we could read them, honestly counted
        self._duplicate_log = Throttle(10.0)

    def _make_responder(self, iface: Interface) -> Responder:
        loop = asyncio.get_running_loop()
        arp = RawPacketIO(iface.name, iface.index, "arp", loop, self.kernel_drops)
        try:
            ndp = RawPacketIO(iface.name, iface.index, "ndp", loop, self.kernel_drops)
        except OSError:  # the interface vanished in between: release the first socket too
            arp.close()
            raise
        return Responder(iface.name, iface.mac, arp, ndp, iface.link_local, on_duplicate=self._duplicate,
                         own_macs=self.own_macs)

    def _duplicate(self, ip: str, mac: str, ifname: str) -> None:
        # Anyone on the LAN can send these as fast as they like: count each, log and record a few.
        self.duplicates[ifname] = self.duplicates.get(ifname, 0) + 1
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
        self.state.apply(kind, event, obj)
        if kind == "nodes":
            self.liveness.set_peers(self.state.peers(), self.state.peer_addresses())
        self.mark_dirty()

    def _on_interfaces(self, interfaces: dict[str, Interface]) -> None:
        # Pod veths come and go all day: say so only when the default set changes.
        level = logging.INFO if _defaults(interfaces) != _defaults(self.interfaces) else logging.DEBUG
        log.log(level, "usable interfaces: %s", ", ".join(_defaults(interfaces)) or "none")
        self.interfaces = interfaces
        self.mark_dirty()

    def recompute(self) -> None:
        """Desired state from the snapshot, then let the announcer diff it in."""
        snapshot = self.state.snapshot(self.liveness.alive)
        self.desired = compute(snapshot, self.node)
        self._ip_owner = {d.ip: d.service for d in self.desired.decisions}
        announced = list(self.desired.announcements)
        self.health.set_probes(forwarding.probes(snapshot, announced, self.fwd.kube_proxy_healthz_port))
        self.forwarding = forwarding.plan(snapshot, self.node, announced, self.health.failing,
                                          self.fwd.kube_proxy_healthz_port)
        if self.fwd.enabled:
            self.nftables.update(render(self.forwarding))
        else:
            self.forwarding = forwarding.ForwardingPlan((), (), {
                k: forwarding.ServicePlan(k, {}, disabled=True) for k in self.forwarding.services})
        diff = self.announcer.apply(self.desired.announcements, self.interfaces)
        if diff:
            log.info("announcements changed: +%s -%s", list(diff.added), list(diff.removed))
        self.status.report(self.desired.decisions, self.state.services, self.liveness.alive,
                           _defaults(self.interfaces), self.forwarding.services)

    def _informer(self, name: str, fn: Any, *args: Any) -> Informer:
        loop = asyncio.get_running_loop()

        def list_fn(*a: Any, **kw: Any) -> Any:
            return fn(*args, *a, **kw)

        return Informer(name, list_fn, lambda ev, obj: self._on_event(name, ev, obj), loop)

    async def run(self) -> None:
        """Run until cancelled."""
        core, disc = client.CoreV1Api(self.api), client.DiscoveryV1Api(self.api)
        custom = client.CustomObjectsApi(self.api)
        self.informers = [
            self._informer("nodes", core.list_node),
            self._informer("services", core.list_service_for_all_namespaces),
            self._informer("slices", disc.list_endpoint_slice_for_all_namespaces),
            self._informer("pools", custom.list_cluster_custom_object, GROUP, VERSION, IPADDRESSPOOLS),
            self._informer("advertisements", custom.list_cluster_custom_object, GROUP, VERSION, L2ADVERTISEMENTS),
        ]
        loop = asyncio.get_running_loop()
        tracker = InterfaceTracker(loop, self._on_interfaces, self.exclude, self.own_macs)
        self.interfaces = await asyncio.to_thread(tracker.start)
        await self.liveness.start()
        # The programmer's first pass also clears a table a killed speaker left behind.
        programmer = loop.create_task(self.nftables.run() if self.fwd.enabled else asyncio.sleep(0))
        kube_proxy = loop.create_task(wait_for_kube_proxy(self.kube_proxy_metrics_url, self.join_bound))
        for informer in self.informers:
            informer.start()
        try:  # a SIGTERM while still waiting to join cleans up too
            await asyncio.gather(*(i.synced.wait() for i in self.informers))
            log.info("synced; node %s, interfaces %s", self.node, ", ".join(_defaults(self.interfaces)))
            reason = await kube_proxy
            await self.liveness.join()
            log.info("joined the election (%s)", reason.value)
            # Self-fencing: no carrier on the announce links, or isolated from the peers (see fencing.py).
            if self.presence is not None:
                self.fencer = Fencer(self.liveness, self.presence, lambda: bool(_defaults(self.interfaces))
                                     or not tracker.no_carrier, self._rejoin)
                fencing = asyncio.gather(self.presence.run(), self.fencer.run())
            await self._recompute_when_dirty(loop)
        finally:
            programmer.cancel()
            kube_proxy.cancel()
            if self.fencer is not None:
                fencing.cancel()
            await asyncio.gather(programmer, kube_proxy, self.health.close(), return_exceptions=True)
            tracker.stop()
            for informer in self.informers:
                informer.stop()
            self.announcer.close()
            await self.liveness.close()
            await asyncio.to_thread(self.status.events.close)

    async def _rejoin(self) -> None:
        """Back from a fence: through the join gate again (kube-proxy synced, peers hear us first)."""
        reason = await wait_for_kube_proxy(self.kube_proxy_metrics_url, self.join_bound)
        await self.liveness.join()
        log.info("rejoined the election after fencing (%s)", reason.value)

    async def _recompute_when_dirty(self, loop: asyncio.AbstractEventLoop) -> None:
        elapsed = 0.0
        while True:
            await self._dirty.wait()
            # Let related events land together; under a flood (10k Services created) this also
            # caps recomputation at about half a core: the pause grows with the last pass's cost.
            await asyncio.sleep(max(0.005, elapsed))
            self._dirty.clear()
            started = loop.time()
            self.recompute()
            elapsed = loop.time() - started

    def ready(self) -> tuple[bool, str]:
        """Readiness: synced with the API at least once."""
        if self.desired is None:
            return False, "not joined yet (waiting for the API sync and kube-proxy's first sync)"
        return True, f"announcing {sum(len(v) for v in self.announcer.owned().values())} (ip, interface) pairs"


def _defaults(interfaces: dict[str, Interface]) -> tuple[str, ...]:
    """Names of the interfaces answered on when an L2Advertisement names none."""
    return tuple(sorted(name for name, i in interfaces.items() if i.by_default))
