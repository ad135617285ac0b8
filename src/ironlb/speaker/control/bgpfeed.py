"""BGP mode's feed: the BGP objects and the speaker's cluster view in, this node's Desired out to the FRR driver.

The speaker's informers hand BGPPeer, BFDProfile and BGPAdvertisement events here; the password Secrets the peers
name are read by name (the chart lets the speaker read those only). Each control-plane pass calls `follow` with
the Services it decided again (None: all of them): their announcements are recomputed (state.bgpview), the
prefixes they touched go to the driver with the new Desired as one batch (the driver diffs), and the Service's
BGPAnnounced condition is written by one node. A change of the BGP objects or of a node's labels recomputes all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from dataclasses import replace
from itertools import chain
from typing import Any, Protocol

from ironlb.api.bgp import BGPConfig, Problem
from ironlb.api.bgp_parse import parse_config
from ironlb.api.conditions import bgp_announced_part
from ironlb.api.constants import API_VERSION
from ironlb.api.reasons import BGPAnnounceReason, ConditionType
from ironlb.common.events import ObjectRef
from ironlb.common.kubeapi import SECRETS, ApiError, Client
from ironlb.common.kubeapi.resources import BFD_PROFILES, BGP_ADVERTISEMENTS, BGP_PEERS, Resource
from ironlb.core.bgp.model import Announcement, Desired
from ironlb.core.election import elect
from ironlb.speaker.control.bgpstatus import NodeStatusWriter, Source
from ironlb.speaker.control.status import Said, StatusReporter
from ironlb.speaker.state.bgpproxy import proxied
from ironlb.speaker.state.bgpview import BgpSetting, announcements, carriers, node_base
from ironlb.speaker.state.incremental import IncrementalDesired
from ironlb.speaker.state.snapshot import NodeInfo

log = logging.getLogger(__name__)
KINDS: dict[str, Resource] = {"bgppeers": BGP_PEERS, "bfdprofiles": BFD_PROFILES,
                              "bgpadvertisements": BGP_ADVERTISEMENTS}
SECRET_TIMEOUT = (5.0, 10.0)
NOT_ANNOUNCED_TEXT = {
    BGPAnnounceReason.NO_BGP_ADVERTISEMENT: "no BGPAdvertisement covers its pool (or selects the Service)",
    BGPAnnounceReason.NO_ANNOUNCING_NODE: "no node announces it: none is selected by both a BGPAdvertisement and "
                                          "a BGPPeer, or (externalTrafficPolicy Local) none has a ready endpoint",
}


class Driver(Protocol):
    """What the feed needs of BGP mode's component (speaker.bgp.component.BgpComponent)."""

    async def update(self, desired: Desired, touched: set[str] | None = None) -> None: ...


class Component(Driver, Source, Protocol):
    """BGP mode's component as the speaker holds it: the feed's driver, the status writer's source."""


def bgp_condition(ips: Iterable[str], reason: BGPAnnounceReason, found: Mapping[str, Mapping[str, Collection[str]]]
                  ) -> Said:
    """The BGPAnnounced condition: every node and its peers for each IP, or why none carries it."""
    if reason is BGPAnnounceReason.ADVERTISED:
        parts = [bgp_announced_part(ip, node, tuple(peers)) for ip in ips for node, peers in
                 sorted(found.get(ip, {}).items())]
        return Said(True, reason, "; ".join(parts))
    return Said(False, reason, f"{', '.join(ips)} not announced over BGP: {NOT_ANNOUNCED_TEXT.get(reason, '')}")


def _labels(raw: Mapping[str, Any] | None) -> Mapping[str, str] | None:
    return ((raw or {}).get("metadata") or {}).get("labels")


def _node_view(node: NodeInfo | None) -> tuple[Any, ...] | None:
    return None if node is None else (tuple(sorted(node.labels.items())), node.network_unavailable)


class BgpFeed:
    """This node's BGP Desired state, kept Service by Service, and handed to DRIVER one change set at a time."""

    def __init__(self, me: str, api: Client, namespace: str, driver: Driver, status: StatusReporter,
                 mark_changed: Callable[[], None], proxy_next_hops: bool = False) -> None:
        self.me, self.api, self.namespace, self.driver = me, api, namespace, driver
        self.proxy_next_hops = proxy_next_hops  # paths on the carriers' behalf (speaker.state.bgpproxy)
        self._proxy_alive: frozenset[str] = frozenset()
        self.status, self._mark_changed = status, mark_changed
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.setting = BgpSetting()
        self.base = Desired()  # peers and profiles of this node, no announcements
        self.by_service: dict[str, tuple[Announcement, ...]] = {}
        self.desired = Desired()
        self.problems: frozenset[Problem] = frozenset()
        self._nodes: dict[str, tuple[Any, ...] | None] = {}
        self._config_dirty = True
        self._all = True
        self._touched: set[str] | None = set()
        self._wake = asyncio.Event()
        self._secret_task: asyncio.Task[None] | None = None

    # --- events ---------------------------------------------------------------------------------------------

    def on_event(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """A BGP object changed (KINDS): the config is parsed again on the next pass."""
        name = str((obj.get("metadata") or {}).get("name", ""))
        if event == "DELETED":
            self.objects[kind].pop(name, None)
        else:
            self.objects[kind][name] = obj
        self._config_dirty = True
        if kind == "bgppeers":
            self._read_secrets()

    def on_view_event(self, kind: str, name: str, view: IncrementalDesired) -> None:
        """A cluster event the view has applied: nodes whose labels changed, and pools, recompute every Service."""
        if kind == "pools":
            self._config_dirty = True  # an advertisement's aggregation is checked against its pools
        elif kind == "nodes":
            seen = _node_view(view.nodes.get(name))
            if self._nodes.get(name) != seen:
                self._nodes[name] = seen
                self._all = True

    def _read_secrets(self) -> None:
        if self._secret_task is None or self._secret_task.done():
            self._secret_task = asyncio.get_running_loop().create_task(self._fetch_secrets())

    def _secret_names(self) -> set[str]:
        refs = ((p.get("spec") or {}).get("passwordSecret") for p in self.objects["bgppeers"].values())
        return {str(r["name"]) for r in refs if isinstance(r, Mapping) and r.get("name")}

    async def _fetch_secrets(self) -> None:
        """The Secrets the peers name, read once each time the peers change (absent ones: left out)."""
        found: dict[str, dict[str, Any]] = {}
        for name in sorted(self._secret_names()):
            try:
                found[name] = await asyncio.to_thread(self.api.get, SECRETS, name, self.namespace,
                                                      timeout=SECRET_TIMEOUT)
            except (ApiError, OSError) as exc:
                log.warning("BGP: cannot read Secret %s/%s: %s", self.namespace, name, exc)
        if found != self.secrets:
            self.secrets = found
            self._config_dirty = True
            self._mark_changed()

    # --- a pass ---------------------------------------------------------------------------------------------

    def follow(self, view: IncrementalDesired, keys: Collection[str] | None, alive: frozenset[str]) -> None:
        """Recompute the announcements of the Services KEYS (None: all) and hand the change to the driver."""
        if self._config_dirty:
            self._reparse(view)
        for name in view.nodes.keys() - self._nodes.keys():
            self._nodes[name] = _node_view(view.nodes[name])
            self._all = True
        self.setting = replace(self.setting, nodes=view.nodes, pool_labels=view.pool_labels)
        full = keys is None or self._all
        if self.proxy_next_hops and alive != self._proxy_alive:  # whose paths this node carries may change
            self._proxy_alive = alive
            keys = set(view.infos) | set(self.by_service)
        base = node_base(self.setting, self.me)
        if full:
            keys = set(view.infos) | set(self.by_service)
        assert keys is not None
        touched: set[str] = set()
        for key in keys:
            touched |= self._service(view, key, alive)
        if not full and not touched and base == self.base:
            return
        self._all, self.base = False, base
        self.desired = replace(base, announcements=tuple(chain.from_iterable(self.by_service.values())))
        self._touched = None if full or self._touched is None else self._touched | touched
        self._wake.set()

    def _service(self, view: IncrementalDesired, key: str, alive: frozenset[str]) -> set[str]:
        """Recompute Service KEY: its announcements here and, if this node writes it, its condition; the prefixes
        whose announcements may have changed."""
        old = self.by_service.pop(key, ())
        info, raw = view.infos.get(key), view.state.services.get(key)
        if info is None or raw is None:
            self.status.forget([key])
            return {a.prefix for a in old}
        labels = _labels(raw)
        new = (proxied(info, labels, self.me, self.setting, alive) if self.proxy_next_hops
               else announcements(info, labels, self.me, self.setting))
        if new:
            self.by_service[key] = new
        reason, found = carriers(info, labels, self.setting)
        nodes = {n for by_node in found.values() for n in by_node} & alive
        if (elect(key, nodes) or elect(key, alive)) == self.me:
            self.status.say(raw, ConditionType.SERVICE_BGP_ANNOUNCED, bgp_condition(info.ips, reason, found))
        return set() if old == new else {a.prefix for a in old} | {a.prefix for a in new}

    def _reparse(self, view: IncrementalDesired) -> None:
        config: BGPConfig = parse_config(self.objects["bgppeers"].values(), self.objects["bfdprofiles"].values(),
                                         self.objects["bgpadvertisements"].values(), secrets=self.secrets,
                                         pools=view.state.pools)
        self.setting = replace(self.setting, config=config)
        self._config_dirty, self._all = False, True
        self._report_problems(frozenset(config.problems), view)

    def _report_problems(self, problems: frozenset[Problem], view: IncrementalDesired) -> None:
        """An Event for each problem that is new (one node writes it: the one elected for the object)."""
        for p in sorted(problems - self.problems, key=lambda p: (p.kind, p.name, p.reason.value)):
            log.warning("BGP config: %s %s: %s: %s", p.kind, p.name, p.reason.value, p.message)
            if elect(f"{p.kind}/{p.name}", view.alive or {self.me}) == self.me:
                uid = (self.objects.get(_plural(p.kind), {}).get(p.name, {}).get("metadata") or {}).get("uid")
                self.status.events.submit(ObjectRef(API_VERSION, p.kind, p.name, None, uid), p.reason, p.message,
                                          warning=True)
        self.problems = problems

    # --- the driver -----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: hand each new Desired to the driver (changes that come meanwhile join the next one)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            touched, self._touched = self._touched, set()
            try:
                await self.driver.update(self.desired, touched)
            except Exception:  # a defect must not end BGP mode silently: logged, and the next change is whole
                log.exception("BGP: handing a change to FRR's driver failed")
                self._touched = None


def _plural(kind: str) -> str:
    return {"BGPPeer": "bgppeers", "BFDProfile": "bfdprofiles", "BGPAdvertisement": "bgpadvertisements"}.get(kind, "")


@contextlib.asynccontextmanager
async def bgp_running(feed: BgpFeed | None, writer: NodeStatusWriter | None) -> AsyncIterator[None]:
    """BGP mode (when FEED is given): the feed hands each change to FRR's driver, WRITER keeps BGPNodeStatus."""
    if feed is None or writer is None:
        yield
        return
    tasks = asyncio.gather(feed.run(), writer.run())
    try:
        yield
    finally:
        tasks.cancel()
        await asyncio.gather(tasks, return_exceptions=True)
