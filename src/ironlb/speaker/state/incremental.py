"""The incremental desired state: watch events in, a new ranking table out, in O(what they touch).

A Service or EndpointSlice event recomputes that Service's entries only (none when what its ranking reads
is the same); a Node event only when what the election reads of it (labels, Ready, NetworkUnavailable)
changed, and then only the rankings that keep that node (Cluster rankings are cut: state.cut) or, for
the Local policy, draw on it; a pool or advertisement event only the Services of the pools it covers or
covered (a pool's new addresses: also those in no pool, or in a pool its addresses overlap, whose IPs it
may now hold). The alive set (`set_alive`) keeps the cut rankings' tails alive. Each `publish()` swaps in
a new immutable Table (copy-on-write), so a reader holding the old one is never disturbed; `take_changed`
tells the control plane which Services changed since it last asked.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from ironlb.core.pools import Pool
from ironlb.speaker.state.cluster import SERVICE_NAME_LABEL, ClusterState, advertisement, node_info
from ironlb.speaker.state.compact import Record
from ironlb.speaker.state.covers import CoverKey, Covers
from ironlb.speaker.state.cut import Cut
from ironlb.speaker.state.desired import AnnounceReason, covering, unadvertised
from ironlb.speaker.state.endpoints import SliceTargets, slice_targets
from ironlb.speaker.state.ranking import Ranked, Table, by_pool, candidates, entries, in_ip_order, rerank
from ironlb.speaker.state.snapshot import Advertisement, NodeInfo, ServiceInfo, Snapshot


def _key(obj: Mapping[str, Any]) -> str:
    # Interned: the view's dicts, the table and its entries then hold one copy of each key, not one per event.
    meta = obj.get("metadata", {})
    return sys.intern(f"{meta.get('namespace', '')}/{meta.get('name')}".lstrip("/"))


def _slice_nodes(obj: Mapping[str, Any]) -> tuple[str | None, frozenset[str]]:
    """The Service key a slice belongs to, and its nodes with a ready endpoint."""
    meta = obj.get("metadata", {})
    svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    nodes = frozenset(ep["nodeName"] for ep in obj.get("endpoints") or []
                      if (ep.get("conditions") or {}).get("ready", True) and ep.get("nodeName"))
    return (sys.intern(f"{meta.get('namespace')}/{svc}") if svc else None), nodes


def _addresses(pool: Pool | None) -> tuple[Any, ...] | None:
    """What decides which IPs a pool holds (its labels and selectors do not)."""
    return None if pool is None else (pool.ranges, pool.avoid_buggy_ips)


def _unindex(index: dict[str, set[str]], key: str, nodes: Collection[str]) -> None:
    """Take KEY out of INDEX under NODES (no set kept for a node that indexes nothing)."""
    for node in nodes:
        held = index.get(node)
        if held is not None:
            held.discard(key)
            if not held:
                del index[node]


def _ranking_view(info: ServiceInfo) -> tuple[Any, ...]:
    """What of a Service its entries are ranked from (a Cluster one's endpoints only as: any ready at all)."""
    ready = info.ready_nodes if info.traffic_policy == "Local" else bool(info.ready_nodes)
    return info.ips, info.pool, info.ip_pools, info.traffic_policy, info.incumbents, ready, info.withdrawing


def _election_view(node: NodeInfo) -> tuple[Any, ...]:
    # Addresses matter to heartbeats, not to the election: a change there recomputes nothing.
    return tuple(sorted(node.labels.items())), node.ready, node.network_unavailable


class IncrementalDesired:
    """Keeps the cluster view and this node's ranking table up to date, one watch event at a time."""

    def __init__(self, me: str, lb_class: str | None = None, cut: Cut | None = None,
                 ignore_exclude_lb: bool = False) -> None:
        self.me = me
        self.cut = cut or Cut()  # what of a Cluster-policy ranking is kept (state.cut)
        self.alive: frozenset[str] = frozenset()  # as the fast plane last said; cut rankings keep alive nodes
        self._ranked_alive: frozenset[str] = frozenset()  # the alive set the published table was cut for
        self._unplaced: set[str] = set()  # nodes that became candidates while dead: placed when they come alive
        # Node -> the Services a change of it may touch: Cluster ones whose cut rankings keep it, Local ones with
        # a ready endpoint on it (their ranking is drawn from those nodes alone).
        self._ranked_at: dict[str, set[str]] = {}
        self._ready_at: dict[str, set[str]] = {}
        # Objects (slim.py) but slices: status reporting reads them.
        self.state = ClusterState(lb_class=lb_class, ignore_exclude_lb=ignore_exclude_lb)
        self.table = Table(me=me)  # the published version: replaced, never mutated
        self.infos: dict[str, ServiceInfo] = {}
        self.nodes: dict[str, NodeInfo] = {}
        self.ads: dict[str, Advertisement] = {}
        self.pool_labels: dict[str, dict[str, str]] = {}
        self.pool_forwarding: dict[str, str] = {}
        self._slices: dict[str, str | None] = {}  # slice key -> its Service
        # Service -> (slice key, its ready nodes) of each of its slices: pairs, not a dict per Service (most have one).
        self._ready: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {}
        self._targets: dict[str, SliceTargets] = {}  # slice key -> its ready endpoints' addresses (steering)
        self._by_pool: dict[str | None, set[str]] = {}  # pool -> Services with an IP in it (None: in no pool)
        self._pools: dict[str, Pool] = {}  # pool -> its valid Pool as last ranked (ClusterState keeps the current)
        self._dirty: set[str] = set()  # Services whose object or slices changed
        self._reranked: set[str] = set()  # Services to rank afresh (their pool or advertisements changed)
        self._changed: set[str] = set()  # Services recomputed or re-ranked since the last `take_changed()`
        self._moved: set[str] = set()  # Nodes whose election view changed since the last publish
        self._candidates: dict[CoverKey, dict[str, frozenset[str]]] = {}  # cover -> node -> interfaces
        # The candidates as the published table was ranked with (taken when the first event since then
        # drops them): a node that moved was placed already where it was a candidate before.
        self._ranked_candidates: dict[CoverKey, dict[str, frozenset[str]]] | None = None
        self.covers = Covers()  # the advertisements each Service is ranked under (serviceSelectors), per publish

    def apply(self, kind: str, event: str, obj: Mapping[str, Any]) -> None:
        """Record one watch event; `publish()` turns what it touched into a new table."""
        deleted, key = event == "DELETED", _key(obj)
        if kind == "slices":  # only what the election reads of a slice is kept (10,000 raw slices weigh)
            if deleted or self._slice(key) != _slice_nodes(obj):
                self._on_slices(key, None if deleted else obj)
            self._keep_targets(key, None if deleted else obj)  # a pod replaced on the same node: a new address
            return
        store = getattr(self.state, kind)
        if kind == "services" and not deleted and not self.state.kept(obj):
            if key not in store:  # not a LoadBalancer of ours (nor one withdrawing): nothing of it is kept
                return
            event, deleted = "DELETED", True  # no longer one: dropped as if deleted
        if kind == "services" and not deleted:
            obj = Record.of(obj)  # as it is kept: a relist's copy of it compares leaf by leaf
        if not deleted and store.get(key) == obj:
            # A relist or resync handing back what we hold: nothing to recompute, and the copy held stays (the
            # informer keeps versions only, so the new one is garbage at once and its memory is reused).
            return
        self.state.apply(kind, event, obj)
        getattr(self, f"_on_{kind}")(key, None if deleted else obj)

    def set_alive(self, alive: frozenset[str]) -> None:
        """The alive set from now on: the next `publish()` keeps the cut rankings' tails alive."""
        self.alive = alive

    def _on_services(self, key: str, _: Any) -> None:
        self._dirty.add(key)

    def _slice(self, key: str) -> tuple[str | None, frozenset[str]] | None:
        """What is held of slice KEY: its Service and ready nodes (None: not held)."""
        if key not in self._slices:
            return None
        svc = self._slices[key]
        return svc, (dict(self._ready[svc])[key] if svc is not None else frozenset())

    def _on_slices(self, key: str, obj: Mapping[str, Any] | None) -> None:
        old_svc = self._slices.pop(key, None)
        if old_svc is not None:
            held = tuple(pair for pair in self._ready.get(old_svc, ()) if pair[0] != key)
            if held:
                self._ready[old_svc] = held
            else:  # nothing kept for a Service that has no slice left
                self._ready.pop(old_svc, None)
            self._dirty.add(old_svc)
        if obj is not None:
            svc, nodes = _slice_nodes(obj)
            self._slices[key] = svc
            if svc is not None:
                self._ready[svc] = (*self._ready.get(svc, ()), (key, nodes))
                self._dirty.add(svc)

    def _keep_targets(self, key: str, obj: Mapping[str, Any] | None) -> None:
        targets = slice_targets(obj) if obj is not None else None
        if targets is None:
            self._targets.pop(key, None)
        else:
            self._targets[key] = targets

    def targets(self, service: str) -> list[SliceTargets]:
        """The ready endpoints of SERVICE's slices, as steering reads them."""
        return [t for k, _ in self._ready.get(service, ()) if (t := self._targets.get(k)) is not None]

    def _on_nodes(self, name: str, obj: Mapping[str, Any] | None) -> None:
        old = self.nodes.pop(name, None)
        new = node_info(obj, self.state.ignore_exclude_lb) if obj is not None else None
        if new is not None:
            self.nodes[name] = new
        if (old is None) != (new is None) or (old and new and _election_view(old) != _election_view(new)):
            self._moved.add(name)  # any Service may rank it: each is re-ranked for this node alone
            self._forget_candidates()

    def _on_pools(self, name: str, obj: Mapping[str, Any] | None) -> None:
        old, new = self._pools.pop(name, None), self.state.valid_pools.get(name)
        if new is not None:
            self._pools[name] = new
        if _addresses(old) != _addresses(new):  # an IP may move into it, out of it, or out of every pool
            touched = [p for p in (old, new) if p is not None]
            for pool in {None, name} | {q for q, held in self._pools.items() if any(held.overlaps(t) for t in touched)}:
                self._reranked |= self._by_pool.get(pool, set())
            self._forget_candidates(name)
        labels = dict((obj or {}).get("metadata", {}).get("labels") or {}) if obj else None
        forwarding = ((obj.get("spec") or {}).get("forwarding") or "KubeProxy") if obj is not None else None
        if self.pool_forwarding.pop(name, None) != forwarding:  # nothing to rank; forwarding follows its Services
            self._changed |= self._by_pool.get(name, set())
        if forwarding is not None:
            self.pool_forwarding[name] = forwarding
        if self.pool_labels.get(name) != labels:
            if labels is None:
                self.pool_labels.pop(name, None)
            else:
                self.pool_labels[name] = labels
            self._reranked |= self._by_pool.get(name, set())  # which advertisements select it may change
            self._forget_candidates(name)

    def _on_advertisements(self, name: str, obj: Mapping[str, Any] | None) -> None:
        old = self.ads.pop(name, None)
        new = advertisement(obj) if obj is not None else None
        if new is not None:
            self.ads[name] = new
        if old == new:
            return
        self.covers.advertisements_changed(self.ads.values())
        self._forget_candidates()
        for pool, keys in self._by_pool.items():  # the pools it covered or now covers
            if any(ad is not None and covering(pool, [ad], self.pool_labels) for ad in (old, new)):
                self._reranked |= keys

    def _ordered_ads(self) -> list[Advertisement]:
        return [self.ads[name] for name in sorted(self.ads)]

    def _refresh_info(self, key: str) -> ServiceInfo | None:
        old = self.infos.pop(key, None)
        if old is not None:
            for pool in old.pools():
                self._by_pool.get(pool, set()).discard(key)
            _unindex(self._ready_at, key, old.ready_nodes if old.traffic_policy == "Local" else ())
        raw = self.state.services.get(key)
        info = self.state.service_info(key, raw, {key: self._ready_nodes(key)}) if raw is not None else None
        if info is not None:
            self.infos[key] = info
            for pool in info.pools():
                self._by_pool.setdefault(pool, set()).add(key)
            if info.traffic_policy == "Local":
                for node in info.ready_nodes:
                    self._ready_at.setdefault(node, set()).add(key)
        return info

    def _ready_nodes(self, key: str) -> frozenset[str]:
        # A Service's one slice (the usual case) gives its own set: ServiceInfo keeps that one, not a copy.
        slices = self._ready.get(key) or ()
        if len(slices) == 1:
            return slices[0][1]
        return frozenset().union(*(nodes for _, nodes in slices))

    def _forget_candidates(self, *pools: str) -> None:
        """Drop the candidates of POOLS (none named: of every pool), keeping what the table was ranked with."""
        if self._ranked_candidates is None:
            self._ranked_candidates = dict(self._candidates)
        self.covers.clear()
        if not pools:
            self._candidates.clear()
        for key in [k for k in self._candidates if k[0] in pools]:
            del self._candidates[key]

    def _pool_candidates(self, key: CoverKey, covered: list[Advertisement]) -> dict[str, frozenset[str]]:
        if key not in self._candidates:
            self._candidates[key] = candidates(covered, self.nodes)
        return self._candidates[key]

    def _entries(self, info: ServiceInfo, ads: list[Advertisement]) -> tuple[Ranked, ...]:
        """INFO's entries, each IP under the advertisements of its own pool that apply to it."""
        parts = []
        for part in by_pool(info):
            key, pool_ads, applied = self.covers.cover(part.pool, info.labels, ads, self.pool_labels)
            parts.append(entries(part, applied, self.nodes, self._pool_candidates(key, applied),
                                 lambda ip, nodes: self.cut.order(ip, nodes, self.alive),
                                 none_applies=unadvertised(pool_ads)))
        return parts[0] if len(parts) == 1 else in_ip_order(info, parts)

    def publish(self) -> Table:
        """Recompute what the events since the last call touched; swap in (and return) the new table."""
        born, died = self.alive - self._ranked_alive, self._ranked_alive - self.alive
        if not self._dirty and not self._reranked and not self._moved and not born and not died:
            return self.table
        self._ranked_alive = self.alive
        self.covers.clear()  # bounded: one publish's pools and label sets
        fresh = born & self._unplaced  # now alive: placed in every ranking it belongs to
        self._moved |= fresh
        self._unplaced -= born
        self._dirty |= self._reranked
        # A Service whose change leaves what its ranking reads alone keeps its entries (ranking one scores
        # every candidate node), unless nodes, pools or advertisements changed under it too.
        keep = not (self._moved or born or died)
        ads = self._ordered_ads()
        put: dict[str, tuple[Ranked, ...]] = {}
        drop: list[str] = []
        for key in self._dirty:
            before = self.infos.get(key)
            info = self._refresh_info(key)
            if info is None:
                drop.append(key)
            elif (keep and key not in self._reranked and before is not None and key in self.table.services
                  and _ranking_view(before) == _ranking_view(info)
                  and (not self.covers.selects_services or before.labels == info.labels)):
                continue
            else:
                put[key] = self._entries(info, ads)
        if self._moved or born or died:
            self._refit(put, ads, born, died, fresh)
        self._ranked_candidates = None
        self._changed |= self._dirty
        self._changed.update(key for key, entries in put.items() if key not in self._dirty)
        self._index(put, drop)
        self._dirty.clear()
        self._reranked.clear()
        self._moved.clear()
        self.table = self.table.evolve(put, drop)
        return self.table

    def _index(self, put: Mapping[str, tuple[Ranked, ...]], drop: list[str]) -> None:
        """Follow the Cluster Services' kept nodes in `_ranked_at`, before the table takes PUT and DROP."""
        for key in [*put, *drop]:
            _unindex(self._ranked_at, key, {n for e in self.table.services.get(key) or () for n in e.ranking})
            info = self.infos.get(key)
            if key in put and info is not None and info.traffic_policy != "Local":
                for node in {n for e in put[key] for n in e.ranking}:
                    self._ranked_at.setdefault(node, set()).add(key)

    def _refit(self, put: dict[str, tuple[Ranked, ...]], ads: list[Advertisement], born: frozenset[str],
               died: frozenset[str], fresh: frozenset[str]) -> None:
        """Into PUT: the Services not otherwise touched whose kept nodes the moved nodes or the alive set change.

        FRESH: nodes that came alive never placed. Only they, and alive nodes that became candidates of a pool,
        are placed, which scores every Cluster IP of it; a node that stays a candidate keeps its place."""
        moved = frozenset(self._moved)
        self._unplaced |= {n for n in moved if n not in self.alive}
        pools: dict[CoverKey, tuple[dict[str, frozenset[str]], bool]] = {}
        placed = {key: self._joined(key, moved, fresh, pools)
                  for key in self.covers.keys(ads, self.pool_labels, self._by_pool, self.infos.values())}
        placing = born or any(placed.values())
        touching = moved | died
        if placing:
            keys: Iterable[str] = self.infos
        else:  # only the Services that keep a node that moved or died, or have an endpoint on a moved one
            keys = set().union(*(self._ranked_at.get(n, ()) for n in touching),
                               *(self._ready_at.get(n, ()) for n in moved))
        for key in keys:
            info, old = self.infos.get(key), self.table.services.get(key)
            if info is None or key in self._dirty or not old:
                continue
            if old[0].reason is not AnnounceReason.ANNOUNCING and not info.ip_pools:
                continue
            cover = self.covers.cover(info.pool, info.labels, ads, self.pool_labels)[0]
            if info.ip_pools:  # IPs in several pools (odd): ranked afresh
                new = self._entries(info, ads)
            elif info.traffic_policy == "Local":  # a ranking of its ready nodes alone: never cut
                if not moved or not (moved & info.ready_nodes or any(n in e.ranking for e in old for n in moved)):
                    continue
                new = rerank(old, info, moved, self._candidates_and_same(pools, cover)[0])
            elif born or placed.get(cover) or any(n in e.ranking for e in old for n in touching):
                candidates, same = self._candidates_and_same(pools, cover)
                refitted = [self.cut.refit(e, moved, candidates, same, self.alive, born, placed.get(cover, ()))
                            for e in old]
                new = self._entries(info, ads) if None in refitted else tuple(e for e in refitted if e is not None)
            else:
                continue
            if new != old:
                put[key] = new

    def _joined(self, key: CoverKey, moved: frozenset[str], fresh: frozenset[str],
                cache: dict[CoverKey, tuple[dict[str, frozenset[str]], bool]]) -> frozenset[str]:
        """The alive nodes of MOVED to place in KEY's rankings: FRESH ones, and those that became its candidates."""
        alive = [n for n in moved if n in self.alive]
        if not alive:
            return frozenset()
        now = self._candidates_and_same(cache, key)[0]
        before = (self._ranked_candidates or {}).get(key)
        return frozenset(n for n in alive if n in now and (n in fresh or before is None or n not in before))

    def _candidates_and_same(self, cache: dict[CoverKey, tuple[dict[str, frozenset[str]], bool]],
                             key: CoverKey) -> tuple[dict[str, frozenset[str]], bool]:
        """KEY's candidates (node -> interfaces), and whether they all answer alike; kept in CACHE for a publish.
        KEY comes from `covers` in the same publish, which keeps its advertisements."""
        if key not in cache:
            candidates = self._pool_candidates(key, self.covers.advertisements_of(key))
            cache[key] = candidates, len(set(candidates.values())) <= 1
        return cache[key]

    def keeping(self, nodes: Collection[str]) -> set[str]:
        """The Services whose rankings may keep any of NODES (a superset: Local ones with an endpoint there)."""
        return set().union(*(self._ranked_at.get(n, ()) for n in nodes), *(self._ready_at.get(n, ()) for n in nodes))

    def take_changed(self) -> set[str]:
        """The Services whose object, slices or entries the publishes since the last call changed (then forgotten)."""
        keys, self._changed = self._changed, set()
        return keys

    def snapshot(self, alive: frozenset[str]) -> Snapshot:
        """The Snapshot of the same view, for reading at once: it shares this view's maps (no copy of every
        Service per pass), which the next event changes."""
        return Snapshot(services=self.infos, nodes=self.nodes, alive=alive,
                        advertisements=tuple(self._ordered_ads()), pool_labels=self.pool_labels,
                        pool_forwarding=self.pool_forwarding)
