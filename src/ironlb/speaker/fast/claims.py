"""What the fast plane needs of the ranking table: per IP, this node's claims. Pure, no I/O.

A ranking matters to this node only up to itself: the nodes ranked after it never decide whether it
owns the IP. So a claim is the set of nodes ranked *ahead* of this node, as a mask of `NodeIndex` bits,
and the interfaces it would answer on; the IP is ours while this node is alive and no node ahead of it
is (`claim.ahead & alive_mask == 0`). A held node (its speaker restarts, its node forwards) counts as alive,
but this node answers for it, with its MAC, where no node ahead is alive and not held (`cover_for`).
The control plane turns each changed IP's entries into claims
(`claims_of`) and ships only those across the process boundary, with the names of any new bits first;
the fast plane keeps them in a `ClaimTable`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ironlb.speaker.fast.nodeindex import NodeIndex
from ironlb.speaker.state.snapshot import AnnounceReason

if TYPE_CHECKING:  # the fast plane's process holds claims, never a ranking table: it does not load one
    from ironlb.speaker.state.ranking import Ranked

# Distinct interface sets kept for interning: a handful in practice (one per advertisement's list). Past
# this the memo starts again, so a churn of interface lists cannot grow it without bound.
INTERN_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Claim:
    """One entry that ranks this node: who comes before it (a NodeIndex mask), and where it would answer."""

    ahead: int
    interfaces: frozenset[str]

    def __reduce__(self) -> tuple[type[Claim], tuple[int, frozenset[str]]]:
        # Rebuilt from its two fields: pickle's default for a slotted dataclass takes a slower path per
        # field, and a relist sends every IP's claims (the claims chunks are the channel's hot path).
        return Claim, (self.ahead, self.interfaces)


Claims = tuple[Claim, ...]  # an IP's claims (Services sharing the IP each have one); () when none


def claims_of(entries: Iterable[Ranked], me: str, index: NodeIndex) -> Claims:
    """The claims ME has on one IP, from its ranked entries (entries that do not rank ME give none)."""
    out = []  # nodes ahead of ME that INDEX has not seen get their bits here
    for entry in entries:
        if entry.reason is AnnounceReason.ANNOUNCING and me in entry.ranking:
            position = entry.ranking.index(me)
            out.append(Claim(index.assign(entry.ranking[:position]), entry.interfaces_of(position)))
    return tuple(out)


class ClaimTable:
    """IP -> this node's claims, the node index they are written in, and the alive set as a mask (fast plane)."""

    def __init__(self, me: str) -> None:
        self.me = me
        self.index = NodeIndex()  # a copy of the control plane's, extended by `learn`
        self.claims: dict[str, Claims] = {}
        self.alive: frozenset[str] = frozenset()
        self.held: frozenset[str] = frozenset()  # alive nodes whose IPs are answered for them, with their MACs
        self._alive_mask = 0  # the indexed nodes of `alive`
        self._held_mask = 0  # the indexed nodes of `held`
        self._interned: dict[frozenset[str], frozenset[str]] = {}

    def learn(self, start: int, names: Sequence[str]) -> None:
        """The control plane gave NAMES the bits from START on (before any claim that uses them)."""
        self.index.extend(start, names)
        self._alive_mask = self.index.mask(self.alive)  # a node alive before it had a bit is in the mask now
        self._held_mask = self.index.mask(self.held)

    def set_alive(self, alive: frozenset[str], held: frozenset[str] = frozenset()) -> int:
        """The alive and held sets from now on; returns the mask of the indexed nodes that died, came back, or
        were held or let go."""
        old, old_held, self.alive, self.held = self._alive_mask, self._held_mask, alive, held
        self._alive_mask = self.index.mask(alive)
        self._held_mask = self.index.mask(held)
        return (old ^ self._alive_mask) | (old_held ^ self._held_mask)

    def put(self, ip: str, claims: Claims) -> None:
        """IP's claims are CLAIMS from now on (() drops the IP)."""
        if not claims:
            self.claims.pop(ip, None)
            return
        known = 1 << len(self.index)
        if any(claim.ahead >= known for claim in claims):  # the channel keeps order: only a bug gets here
            raise ValueError(f"a claim on {ip} names a node bit this side was never told of")
        self.claims[ip] = self._intern(claims)

    def update(self, changes: Mapping[str, Claims]) -> None:
        """Several IPs' claims at once."""
        for ip, claims in changes.items():
            self.put(ip, claims)

    @property
    def mine(self) -> Collection[str]:
        """Every IP this node has a claim on (the only ones it may ever answer for)."""
        return self.claims.keys()

    def affected_by(self, changed: int) -> list[str]:
        """IPs whose owner-is-me may change when the nodes of mask CHANGED die or come back."""
        # A scan of every claim, not a per-peer index (peer -> IPs): the index held an entry per (peer, IP),
        # while the scan, once per alive-set change, stays well within a heartbeat timeout
        # (docs/design.md, "Measurements behind the code"; `benchmarks.claims_memory` measures it).
        if not changed:
            return []
        return [ip for ip, claims in self.claims.items()
                if claims[0].ahead & changed or (len(claims) > 1 and any(c.ahead & changed for c in claims))]

    def interfaces_for(self, ip: str, covers: Collection[str] = ()) -> frozenset[str] | None:
        """The interfaces this node answers IP on as its own, given the alive and held sets (None: not mine).

        COVERS: the IPs held nodes told us of; one of them is answered for its node instead (cover_for), any
        other IP a held node was first for is taken over as if that node were dead."""
        if self.me not in self.alive:
            return None
        live = self._alive_mask & ~self._held_mask
        out: frozenset[str] | None = None
        for claim in self.claims.get(ip, ()):
            if not claim.ahead & live and not (claim.ahead & self._held_mask and ip in covers):
                out = claim.interfaces if out is None else out | claim.interfaces
        return out

    def cover_for(self, ip: str, covers: Mapping[str, bytes]) -> tuple[frozenset[str], bytes] | None:
        """The interfaces this node answers IP on for a held node, and that node's MAC (None: not ours to)."""
        if not self._held_mask or ip not in covers or self.me not in self.alive:
            return None
        live = self._alive_mask & ~self._held_mask
        out: frozenset[str] | None = None
        for claim in self.claims.get(ip, ()):
            if not claim.ahead & live and claim.ahead & self._held_mask:
                out = claim.interfaces if out is None else out | claim.interfaces
        return (out, covers[ip]) if out is not None else None

    def _intern(self, claims: Claims) -> Claims:
        # Unpickled, each message brings its own copy of the same few interface sets: keep one of each.
        if len(self._interned) > INTERN_LIMIT:
            self._interned.clear()
        out, same = [], True
        for claim in claims:
            ifaces = self._interned.setdefault(claim.interfaces, claim.interfaces)
            same = same and ifaces is claim.interfaces
            out.append(claim if ifaces is claim.interfaces else Claim(claim.ahead, ifaces))
        return claims if same else tuple(out)
