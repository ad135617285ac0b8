"""BGP mode's feed: the BGP objects and the speaker's cluster view in, this node's Desired out to the FRR driver.

The speaker's informers hand BGPPeer, BFDProfile and BGPAdvertisement events here; the password Secrets the peers
name are watched by name (common.named_secrets: the chart lets the speaker read those only), and a rotated one
re-renders only the peers that name it. Each control-plane pass calls `follow` with the Services it decided again
(None: all of them): their announcements are recomputed (state.bgpview), the prefixes they touched go to the
driver with the new Desired as one batch (the driver diffs), and the Service's BGPAnnounced condition is written by
one node. A change of the BGP objects or of this node's selection recomputes all; another node's, the conditions.
The condition marks each carrier that drains (its Node says it is going, as core.bgp.nodedrain decides for every
Node, or this node's own SIGTERM): its routes go less preferred, then withdrawn; every carrier draining is the
reason Draining.
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
from ironlb.api.reasons import BGPAnnounceReason, BGPConfigReason, BGPDrainReason, ConditionType
from ironlb.common.kubeapi import Client
from ironlb.common.kubeapi.resources import BFD_PROFILES, BGP_ADVERTISEMENTS, BGP_PEERS, Resource
from ironlb.common.named_secrets import PasswordSecrets, WatchSecret, informer_watch
from ironlb.core.bgp.index import Announcements
from ironlb.core.bgp.model import Announcement, Desired
from ironlb.core.bgp.nodedrain import DrainCause, NodeFacts, drain_cause
from ironlb.core.election import elect
from ironlb.speaker.bgp.nodedrain import REASONS
from ironlb.speaker.control.bgpstatus import NodeStatusWriter, Source
from ironlb.speaker.control.status import Said, StatusReporter
from ironlb.speaker.state.bgpproxy import proxied
from ironlb.speaker.state.bgpview import BgpSetting, announcements_and_carriers, carriers, node_base, usable
from ironlb.speaker.state.incremental import IncrementalDesired
from ironlb.speaker.state.snapshot import NodeInfo

log = logging.getLogger(__name__)
KINDS: dict[str, Resource] = {"bgppeers": BGP_PEERS, "bfdprofiles": BFD_PROFILES,
                              "bgpadvertisements": BGP_ADVERTISEMENTS}
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


def bgp_condition(ips: Iterable[str], reason: BGPAnnounceReason, found: Mapping[str, Mapping[str, Collection[str]]],
                  draining: Mapping[str, BGPDrainReason] | None = None) -> Said:
    """The BGPAnnounced condition: every node and its peers for each IP, those DRAINING marked with why (Draining
    when every one drains), or why none carries it."""
    if reason is BGPAnnounceReason.ADVERTISED:
        draining = draining or {}
        carried = [(ip, node, tuple(peers)) for ip in ips for node, peers in sorted(found.get(ip, {}).items())]
        parts = [bgp_announced_part(ip, node, peers, draining.get(node)) for ip, node, peers in carried]
        if carried and all(node in draining for _, node, _ in carried):
            reason = BGPAnnounceReason.DRAINING
        return Said(True, reason, "; ".join(parts))
    return Said(False, reason, f"{', '.join(ips)} not announced over BGP: {NOT_ANNOUNCED_TEXT.get(reason, '')}")


def _labels(raw: Mapping[str, Any] | None) -> Mapping[str, str] | None:
    return ((raw or {}).get("metadata") or {}).get("labels")


def _selection(config: BGPConfig, node: NodeInfo | None) -> tuple[Any, ...] | None:
    """What the Services' announcements read of NODE: whether it may announce, the peers and advertisements
    that select it (a label no selector reads changes nothing)."""
    if node is None:
        return None
    return (usable(node), tuple(n for n, p in sorted(config.peers.items()) if p.selects_node(node.labels)),
            tuple(n for n, a in sorted(config.advertisements.items()) if a.selects_node(node.labels)))


class BgpFeed:
    """This node's BGP Desired state, kept Service by Service, and handed to DRIVER one change set at a time."""

    def __init__(self, me: str, api: Client, namespace: str, driver: Driver, status: StatusReporter,
                 mark_changed: Callable[[], None], watch_secret: WatchSecret | None = None,
                 proxy_next_hops: bool = False, drain_on_cordon: bool = True) -> None:
        self.me, self.api, self.namespace, self.driver = me, api, namespace, driver
        # Which nodes drain, and why: each Node's facts as core.bgp.nodedrain reads them (a cordon only with
        # DRAIN_ON_CORDON, as this node's own trigger), and this node's SIGTERM, which no Node shows.
        self.drain_on_cordon = drain_on_cordon
        self.draining: dict[str, BGPDrainReason] = {}
        self._terminating = False
        self._drains_read = False
        self.proxy_next_hops = proxy_next_hops  # paths on the carriers' behalf (speaker.state.bgpproxy)
        # Whether Service KEY may newly send routes for these IPs (the speaker's announce gate); else held.
        self.may_announce: Callable[[str, Collection[str]], bool] = lambda key, ips: True
        self._proxy_alive: frozenset[str] = frozenset()
        self.status, self._mark_changed = status, mark_changed
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.secrets = PasswordSecrets(watch_secret or informer_watch(api, namespace), self._secret_changed)
        self._secrets_dirty = False
        self.setting = BgpSetting()
        self.base = Desired()  # peers and profiles of this node, no announcements
        self.by_service: dict[str, tuple[Announcement, ...]] = {}
        # The same announcements by prefix and Service, and as the indexed value each Desired holds: a pass
        # rebuilds only the prefixes it touched (core.bgp.index), so a Service event costs that Service.
        self._by_prefix: dict[str, dict[str, tuple[Announcement, ...]]] = {}
        self.announced = Announcements()
        self.desired = Desired()
        self.problems: frozenset[Problem] = frozenset()
        self._nodes: dict[str, tuple[Any, ...] | None] = {}
        self._config_dirty = True
        self._all = True
        self._conditions = False  # another node's selection changed: every condition again, no announcement
        self._touched: set[str] | None = set()
        self._wake = asyncio.Event()

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
            self.secrets.follow(self._secret_names())

    def on_view_event(self, kind: str, name: str, view: IncrementalDesired) -> None:
        """A cluster event the view has applied: nodes whose labels changed, and pools, recompute every Service."""
        if kind == "pools":
            # An advertisement's aggregation is checked against its pools; its pool selectors read their labels.
            self._config_dirty = self._all = True
        elif kind == "nodes":
            self._node_changed(name, view.nodes.get(name))
            self._drain_changed(name, view.state.nodes.get(name))

    def _node_changed(self, name: str, node: NodeInfo | None) -> None:
        """This node's selection changes what it announces; another's, only which nodes the conditions name."""
        seen = _selection(self.setting.config, node)
        if self._nodes.get(name) != seen:
            self._nodes[name] = seen
            if name == self.me:
                self._all = True
            else:
                self._conditions = True

    def _drain_changed(self, name: str, node: Mapping[str, Any] | None) -> None:
        """Whether node NAME drains (its slim Node; None: gone, and no longer a carrier either) changes only the
        conditions: its own routes are the drain trigger's (speaker.bgp.nodedrain)."""
        cause = drain_cause(NodeFacts.of(node), self.drain_on_cordon) if node is not None else None
        if name == self.me and self._terminating:
            cause = DrainCause.TERMINATING
        reason = REASONS[cause] if cause is not None else None
        if self.draining.get(name) != reason:
            if reason is None:
                del self.draining[name]
            else:
                self.draining[name] = reason
            self._conditions = True

    def terminating(self, view: IncrementalDesired) -> None:
        """SIGTERM: this node drains for good; the conditions it writes say so on the next pass."""
        self._terminating = True
        self._drain_changed(self.me, view.state.nodes.get(self.me))
        self._mark_changed()

    def _secret_changed(self, _: str) -> None:
        """A watched Secret changed (or its first list came in): the peers are parsed again on the next pass."""
        self._secrets_dirty = True
        self._mark_changed()

    def _secret_names(self) -> set[str]:
        refs = ((p.get("spec") or {}).get("passwordSecret") for p in self.objects["bgppeers"].values())
        return {str(r["name"]) for r in refs if isinstance(r, Mapping) and r.get("name")}

    # --- a pass ---------------------------------------------------------------------------------------------

    def follow(self, view: IncrementalDesired, keys: Collection[str] | None, alive: frozenset[str]) -> None:
        """Recompute the announcements of the Services KEYS (None: all) and hand the change to the driver."""
        if self._config_dirty or self._secrets_dirty:
            self._reparse(view)
        for name in view.nodes.keys() - self._nodes.keys():
            self._node_changed(name, view.nodes[name])
        if not self._drains_read:  # once: every Node event after it comes through on_view_event
            self._drains_read = True
            for name, node in view.state.nodes.items():
                self._drain_changed(name, node)
        self.setting = replace(self.setting, nodes=view.nodes, pool_labels=view.pool_labels)
        full = keys is None or self._all
        if self.proxy_next_hops and alive != self._proxy_alive:  # whose paths this node carries may change
            self._proxy_alive = alive
            keys = set(view.infos) | set(self.by_service)
        base = node_base(self.setting, self.me)
        if full or self._conditions:
            keys = set(view.infos) | set(self.by_service)
        self._conditions = False
        assert keys is not None
        touched: set[str] = set()
        for key in keys:
            old = self.by_service.get(key, ())
            if changed := self._service(view, key, alive):
                self._refile(key, old, self.by_service.get(key, ()))
                touched |= changed
        if not full and not touched and base == self.base:
            return
        self._all, self.base = False, base
        self.announced = self.announced.updated({p: tuple(chain.from_iterable(self._by_prefix.get(p, {}).values()))
                                                 for p in touched})
        self.desired = replace(base, announcements=self.announced)
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
        if self.proxy_next_hops:
            new = proxied(info, labels, self.me, self.setting, alive)
            reason, found = carriers(info, labels, self.setting)
        else:
            new, reason, found = announcements_and_carriers(info, labels, self.me, self.setting)
        new = self._gated(key, old, new)
        if new:
            self.by_service[key] = new
        nodes = {n for by_node in found.values() for n in by_node} & alive
        if (elect(key, nodes) or elect(key, alive)) == self.me:
            self.status.say(raw, ConditionType.SERVICE_BGP_ANNOUNCED, bgp_condition(info.ips, reason, found,
                                                                                 self.draining))
        return set() if old == new else {a.prefix for a in old} | {a.prefix for a in new}

    def _gated(self, key: str, old: tuple[Announcement, ...], new: tuple[Announcement, ...]
               ) -> tuple[Announcement, ...]:
        """NEW without its new prefixes while the gate holds them (what was sent stays: never a withdrawal)."""
        sent = {a.prefix for a in old}
        fresh = {a.prefix for a in new} - sent
        if not fresh or self.may_announce(key, [prefix.split("/")[0] for prefix in sorted(fresh)]):
            return new
        return tuple(a for a in new if a.prefix in sent)

    def _refile(self, key: str, old: Iterable[Announcement], new: Iterable[Announcement]) -> None:
        """Service KEY's announcements by prefix: OLD's out, NEW's in (what `announced` is rebuilt from)."""
        for prefix in {a.prefix for a in old}:
            holders = self._by_prefix.get(prefix, {})
            holders.pop(key, None)
            if not holders:
                self._by_prefix.pop(prefix, None)
        mine: dict[str, list[Announcement]] = {}
        for a in new:
            mine.setdefault(a.prefix, []).append(a)
        for prefix, anns in mine.items():
            self._by_prefix.setdefault(prefix, {})[key] = tuple(anns)

    def _reparse(self, view: IncrementalDesired) -> None:
        """Parse the BGP objects again. Only a change that moves announcements recomputes every Service: a new
        password, timer or BFD profile changes the peers that use it, which the driver diffs on its own (node_base
        on each pass)."""
        config: BGPConfig = parse_config(self.objects["bgppeers"].values(), self.objects["bfdprofiles"].values(),
                                         self.objects["bgpadvertisements"].values(), secrets=self.secrets.values,
                                         pools=view.state.pools)
        if _announcing(config) != _announcing(self.setting.config):
            self._all = True
        self.setting = replace(self.setting, config=config)
        self._nodes = {name: _selection(config, node) for name, node in view.nodes.items()}
        self._config_dirty = self._secrets_dirty = False
        self._report_problems(frozenset(config.problems))

    def _report_problems(self, problems: frozenset[Problem]) -> None:
        """A log line for each problem that is new. The object's Invalid condition and its Event are the
        operator's (operator.bgpobjects): one writer, where the speakers would race on them."""
        problems = frozenset(p for p in problems if not self._secret_pending(p))  # said once its watch has listed
        for p in sorted(problems - self.problems, key=lambda p: (p.kind, p.name, p.reason.value)):
            log.warning("BGP config: %s %s: %s: %s", p.kind, p.name, p.reason.value, p.message)
        self.problems = problems

    def _secret_pending(self, problem: Problem) -> bool:
        """Whether PROBLEM is a missing Secret whose watch has not listed yet (it may well exist)."""
        if problem.reason is not BGPConfigReason.PASSWORD_SECRET_NOT_FOUND:
            return False
        ref = ((self.objects["bgppeers"].get(problem.name) or {}).get("spec") or {}).get("passwordSecret") or {}
        return isinstance(ref, Mapping) and ref.get("name") in self.secrets.pending

    def close(self) -> None:
        """Stop watching the Secrets."""
        self.secrets.close()

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


def _announcing(config: BGPConfig) -> tuple[Any, ...]:
    """What every Service's announcements read of CONFIG: the peers' names and node selectors, the advertisements
    (a peer's session settings, its password, its BFD profile are the node's base, made again on each pass)."""
    return {name: peer.node_selectors for name, peer in config.peers.items()}, config.advertisements


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
        feed.close()
