"""The ranking table: per Service IP, its API-eligible nodes in election order. Pure, immutable.

The control plane builds it (everything the API says: advertisements, Node conditions and labels,
local endpoints); the fast plane owns liveness. The owner of an IP is the first *alive* node of its
ranking, so a peer's death or return needs no recompute. The fast plane gets only this node's claims
(`fast.claims`), which it indexes itself; the table keeps no per-peer index of its own.
A ranking is a `Ranking`: the node names as small indices into one shared name list, not a tuple of
pointers, a fraction of the size (docs/design.md, "Measurements behind the code").
"""

from __future__ import annotations

import bisect
import sys
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import overload

from ironlb.core import election
from ironlb.core.election import score
from ironlb.speaker.state.desired import (
    AnnounceReason,
    Decision,
    Desired,
    NodeEligibility,
    api_state,
    interfaces_for,
    selects_node,
)
from ironlb.speaker.state.persistent import EMPTY_SET, PMap, PSet
from ironlb.speaker.state.snapshot import Advertisement, NodeInfo, ServiceInfo

# Every node name a ranking has held, and its index there. Append-only: an index means the same name for the
# process's life, so rankings compare by their indices. It grows only with names never seen before (one
# short string per Node that ever existed), never with Services.
_NAMES: list[str] = []
_CODES: dict[str, int] = {}


def _code(name: str) -> int:
    """NAME's index in `_NAMES`, appending it the first time."""
    code = _CODES.get(name)
    if code is None:
        code = _CODES[name] = len(_NAMES)
        _NAMES.append(sys.intern(name))
    return code


def _pack(codes: bytes | list[int]) -> bytes | array[int]:
    """CODES in the narrowest store. One store per sequence of codes, so equal rankings have equal stores."""
    top = max(codes, default=0)
    if top < 256:
        return bytes(codes)  # up to 256 node names: one byte per ranked node (never an array: its raw buffer)
    return array("H" if top < 65536 else "I", codes)


class Ranking(Sequence[str]):
    """Node names in election order: an immutable sequence that reads, compares and hashes as their tuple."""

    __slots__ = ("_codes",)
    _codes: bytes | array[int]

    def __init__(self, names: Iterable[str] = ()) -> None:
        names = names if isinstance(names, list | tuple) else list(names)
        try:  # the common case, every name seen before: one pass in C
            codes = list(map(_CODES.__getitem__, names))
        except KeyError:
            codes = [_code(name) for name in names]
        self._codes = _pack(codes)

    @classmethod
    def _of(cls, codes: bytes | list[int]) -> Ranking:
        out = cls.__new__(cls)
        out._codes = _pack(codes)
        return out

    def __len__(self) -> int:
        return len(self._codes)

    @overload
    def __getitem__(self, item: int) -> str: ...
    @overload
    def __getitem__(self, item: slice) -> Ranking: ...
    def __getitem__(self, item: int | slice) -> str | Ranking:
        if isinstance(item, slice):  # packed again: a slice of a wide store may fit a narrower one
            codes = self._codes[item]
            return Ranking._of(codes if isinstance(codes, bytes) else codes.tolist())
        return _NAMES[self._codes[item]]

    def __iter__(self) -> Iterator[str]:
        return map(_NAMES.__getitem__, self._codes)

    def __contains__(self, name: object) -> bool:
        code = _CODES.get(name) if isinstance(name, str) else None
        # A byte store holds codes < 256 only (and `300 in b""` raises, where the tuple says False).
        return code is not None and (code < 256 or type(self._codes) is not bytes) and code in self._codes

    def index(self, name: object, start: int = 0, stop: int = sys.maxsize) -> int:
        """The position of NAME (ValueError when it is not ranked), as `tuple.index`."""
        code = _CODES.get(name) if isinstance(name, str) else None
        if code is None:
            raise ValueError(f"{name!r} is not in the ranking")
        try:
            return self._codes.index(code, start, stop)
        except ValueError:
            raise ValueError(f"{name!r} is not in the ranking") from None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Ranking):
            return self._codes == other._codes
        if isinstance(other, tuple):  # equal to the tuple it stands for, as the tables' diffs expect
            return len(other) == len(self._codes) and tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Ranking({tuple(self)!r})"

    def __reduce__(self) -> tuple[type[Ranking], tuple[tuple[str, ...]]]:
        # By name: the indices mean something only in this process's `_NAMES`.
        return Ranking, (tuple(self),)


EMPTY_RANKING = Ranking()


@dataclass(frozen=True, slots=True)
class Ranked:
    """One (Service, IP): its ranking, and the interfaces each ranked node would answer on."""

    service: str
    ip: str
    reason: AnnounceReason  # ANNOUNCING when the ranking decides; NOT_IN_POOL, NO_ADVERTISEMENT... otherwise
    ranking: Ranking = EMPTY_RANKING  # any sequence of names given is made a Ranking
    interfaces: tuple[frozenset[str], ...] = ()  # parallel to ranking; a single entry when all are the same
    extended: int = 0  # the last nodes of a cut ranking: alive ones past its head (state.cut)

    def __post_init__(self) -> None:
        if type(self.ranking) is not Ranking:
            object.__setattr__(self, "ranking", Ranking(self.ranking))

    def owner(self, alive: Collection[str]) -> int | None:
        """Index in the ranking of the first alive node (None when no ranked node is alive)."""
        for i, node in enumerate(self.ranking):
            if node in alive:
                return i
        return None

    def interfaces_of(self, index: int) -> frozenset[str]:
        """The interfaces of the node at INDEX."""
        return self.interfaces[index if len(self.interfaces) > 1 else 0]

    def decision(self, alive: Collection[str], me: str) -> Decision:
        """This entry's Decision, as `desired.compute` states it."""
        if self.reason is not AnnounceReason.ANNOUNCING:
            return Decision(self.service, self.ip, self.reason)
        index = self.owner(alive)
        if index is None:
            return Decision(self.service, self.ip, AnnounceReason.NO_ELIGIBLE_NODE)
        node = self.ranking[index]
        reason = AnnounceReason.ANNOUNCING if node == me else AnnounceReason.ANNOUNCED_BY_PEER
        return Decision(self.service, self.ip, reason, node, self.interfaces_of(index))


def rank(ip: str, nodes: Iterable[str], first: str | None = None) -> Ranking:
    """NODES in election order for IP (rendezvous: the smallest score first), FIRST ahead of all if among them."""
    return Ranking(election.order(ip, nodes, first))


def candidates(ads: list[Advertisement], nodes: Mapping[str, NodeInfo]) -> dict[str, frozenset[str]]:
    """Node -> interfaces, for the nodes ADS select that the API lets announce at all (Ready, not excluded...).

    The same for every Service of a pool, so the control plane computes it once per pool; only the
    Local policy's "ready endpoint here" is left to `entries`.
    """
    anyone = ServiceInfo("", (), None)  # Cluster policy: no per-Service condition
    return {n.name: interfaces_for(n, ads) for n in nodes.values()
            if any(selects_node(ad, n) for ad in ads) and api_state(n, anyone) is NodeEligibility.ELIGIBLE}


Cutter = Callable[[str, Collection[str]], tuple[list[str], int]]  # (IP, nodes) -> kept order, its tail's length


def entries(svc: ServiceInfo, ads: list[Advertisement], nodes: Mapping[str, NodeInfo],
            pool_candidates: Mapping[str, frozenset[str]] | None = None,
            cut: Cutter | None = None, none_applies: AnnounceReason = AnnounceReason.NO_ADVERTISEMENT,
            ) -> tuple[Ranked, ...]:
    """The entries of one Service (one per IP) given the advertisements covering its pool that apply to it
    (see `by_pool`; NONE_APPLIES: the reason when there are none). CUT: a Cluster-policy IP's ranking is the
    part of its order it keeps (state.cut), not the whole."""
    if svc.withdrawing:
        return tuple(Ranked(svc.key, ip, AnnounceReason.WITHDRAWN) for ip in svc.ips)
    if svc.pool is None:
        return tuple(Ranked(svc.key, ip, AnnounceReason.NOT_IN_POOL) for ip in svc.ips)
    if not ads:
        return tuple(Ranked(svc.key, ip, none_applies) for ip in svc.ips)
    if not svc.ready_nodes:
        return tuple(Ranked(svc.key, ip, AnnounceReason.NO_READY_ENDPOINTS) for ip in svc.ips)
    ifaces = candidates(ads, nodes) if pool_candidates is None else pool_candidates
    if svc.traffic_policy == "Local":
        ifaces = {n: ifaces[n] for n in svc.ready_nodes if n in ifaces}
    same = len(set(ifaces.values())) <= 1
    out = []
    for ip in svc.ips:
        kept: Sequence[str]
        if cut is not None and svc.traffic_policy != "Local":
            kept, extended = cut(ip, ifaces)
        else:
            kept, extended = rank(ip, ifaces, svc.incumbent(ip)), 0
        per_node = tuple(ifaces[n] for n in kept[:1 if same else None])
        out.append(Ranked(svc.key, ip, AnnounceReason.ANNOUNCING, kept, per_node, extended))
    return tuple(out)


def by_pool(svc: ServiceInfo) -> list[ServiceInfo]:
    """SVC's IPs grouped by pool, a ServiceInfo each (SVC itself when all its IPs share one pool, the rule)."""
    if not svc.ip_pools:
        return [svc]
    groups: dict[str | None, list[str]] = {}
    for ip, pool in zip(svc.ips, svc.ip_pools, strict=True):
        groups.setdefault(pool, []).append(ip)
    return [replace(svc, ips=tuple(ips), pool=pool, ip_pools=()) for pool, ips in groups.items()]


def in_ip_order(svc: ServiceInfo, parts: Iterable[tuple[Ranked, ...]]) -> tuple[Ranked, ...]:
    """The entries of `by_pool`'s parts as one tuple, in SVC's IP order."""
    found = {e.ip: e for part in parts for e in part}
    return tuple(found[ip] for ip in svc.ips)


def rerank(old: tuple[Ranked, ...], svc: ServiceInfo, moved: Collection[str],
           pool_candidates: Mapping[str, frozenset[str]]) -> tuple[Ranked, ...]:
    """SVC's entries once only the nodes MOVED changed: drop them, insert those now eligible by score.

    O(ranking) and a handful of scores per IP, where `entries` scores every node again.
    """
    if not old or old[0].reason is not AnnounceReason.ANNOUNCING:
        return old  # in no pool, no advertisement, no ready endpoint: no node changes that
    ifaces: Mapping[str, frozenset[str]] = pool_candidates
    if svc.traffic_policy == "Local":
        ifaces = {n: pool_candidates[n] for n in svc.ready_nodes if n in pool_candidates}
    joining = [n for n in moved if n in ifaces]
    first = old[0].interfaces
    # One value for all before, and the joining nodes have it too: then no scan of every node.
    same = (len(first) == 1 and all(ifaces[n] == first[0] for n in joining)) or len(set(ifaces.values())) <= 1
    out = []
    for entry in old:
        first = svc.incumbent(entry.ip)
        first = first if first in ifaces else None
        order = [n for n in entry.ranking if n not in moved and n != first]  # the rest: in score order
        for node in joining:
            if node != first:
                bisect.insort(order, node, key=lambda n, ip=entry.ip: score(n, ip))
        if first is not None:
            order.insert(0, first)
        per_node = tuple(ifaces[n] for n in order[:1 if same else None])
        out.append(Ranked(entry.service, entry.ip, AnnounceReason.ANNOUNCING, Ranking(order), per_node))
    return tuple(out)


@dataclass(frozen=True)
class Table:
    """One published version. Never mutated: `evolve` returns the next version, sharing what did not change."""

    me: str
    version: int = 0
    services: PMap[str, tuple[Ranked, ...]] = field(default_factory=PMap)  # Service key -> entries, IP order
    by_ip: PMap[str, tuple[Ranked, ...]] = field(default_factory=PMap)  # IP -> entries (Services sharing it)
    mine: PSet[str] = EMPTY_SET  # IPs with an entry that ranks me at all: the only ones I may announce

    def interfaces_for(self, ip: str, alive: Collection[str]) -> frozenset[str] | None:
        """The interfaces I answer IP on, given ALIVE (None: not mine)."""
        out: frozenset[str] | None = None
        for entry in self.by_ip.get(ip) or ():
            index = entry.owner(alive) if entry.reason is AnnounceReason.ANNOUNCING else None
            if index is not None and entry.ranking[index] == self.me:
                out = (out or frozenset()) | entry.interfaces_of(index)
        return out

    def announcements(self, alive: Collection[str]) -> dict[str, frozenset[str]]:
        """IP -> interfaces for every IP I own given ALIVE (O(IPs that rank me))."""
        out = {}
        for ip in self.mine:
            ifaces = self.interfaces_for(ip, alive)
            if ifaces is not None:
                out[ip] = ifaces
        return out

    def decisions(self, alive: Collection[str]) -> tuple[Decision, ...]:
        """Every decision, in `desired.compute`'s order (Service key, then IP order)."""
        return tuple(e.decision(alive, self.me) for key in sorted(self.services) for e in self.services[key])

    def desired(self, alive: Collection[str]) -> Desired:
        """The same Desired that `desired.compute` gives for this table's view and ALIVE."""
        return Desired(announcements=self.announcements(alive), decisions=self.decisions(alive))

    def evolve(self, put: Mapping[str, tuple[Ranked, ...]], drop: Iterable[str] = ()) -> Table:
        """The next version: Services in PUT get these entries, Services in DROP go. Cost: O(those Services)."""
        drop = [key for key in drop if key in self.services and key not in put]
        changed = {key: value for key, value in put.items() if self.services.get(key) != value}
        if not changed and not drop:
            return self
        gone = set(drop) | set(changed)
        old_ips = {e.ip for key in gone for e in self.services.get(key) or ()}
        new_by_ip: dict[str, list[Ranked]] = {}
        for key in sorted(changed):
            for e in changed[key]:
                new_by_ip.setdefault(e.ip, []).append(e)
        ip_put: dict[str, tuple[Ranked, ...]] = {}
        ip_drop: list[str] = []
        add_mine: list[str] = []
        drop_mine: list[str] = []
        for ip in old_ips | new_by_ip.keys():
            before = self.by_ip.get(ip) or ()
            kept = [e for e in before if e.service not in gone]
            after = tuple(sorted(kept + new_by_ip.get(ip, []), key=lambda e: e.service))
            if after:
                ip_put[ip] = after
            else:
                ip_drop.append(ip)
            was_mine, is_mine = any(self.me in e.ranking for e in before), any(self.me in e.ranking for e in after)
            if was_mine != is_mine:
                (add_mine if is_mine else drop_mine).append(ip)
        return Table(me=self.me, version=self.version + 1, services=self.services.evolve(changed, drop),
                     by_ip=self.by_ip.evolve(ip_put, ip_drop), mine=self.mine.evolve(add_mine, drop_mine))
