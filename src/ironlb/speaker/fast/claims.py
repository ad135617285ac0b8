"""What the fast plane needs of the ranking table: per IP, this node's claims. Pure, no I/O.

A ranking matters to this node only up to itself: the nodes ranked after it never decide whether it
owns the IP. So a claim is the set of nodes ranked *ahead* of this node and the interfaces it would
answer on; the IP is ours while this node is alive and no node ahead of it is. The control plane
turns each changed IP's entries into claims (`claims_of`) and ships only those across the process
boundary; the fast plane keeps them in a `ClaimTable`, with the index a peer's death is looked up in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from ironlb.speaker.desired import AnnounceReason
from ironlb.speaker.ranking import Ranked


@dataclass(frozen=True, slots=True)
class Claim:
    """One entry that ranks this node: who comes before it, and where it would answer."""

    ahead: frozenset[str]
    interfaces: frozenset[str]


Claims = tuple[Claim, ...]  # an IP's claims (Services sharing the IP each have one); () when none


def claims_of(entries: Iterable[Ranked], me: str) -> Claims:
    """The claims ME has on one IP, from its ranked entries (entries that do not rank ME give none)."""
    out = []
    for entry in entries:
        if entry.reason is AnnounceReason.ANNOUNCING and me in entry.ranking:
            index = entry.ranking.index(me)
            out.append(Claim(frozenset(entry.ranking[:index]), entry.interfaces_of(index)))
    return tuple(out)


class ClaimTable:
    """IP -> this node's claims, and peer -> the IPs where it is ahead of this node. Changed in place,
    one IP at a time, on the fast plane only."""

    def __init__(self) -> None:
        self.claims: dict[str, Claims] = {}
        self._ahead: dict[str, set[str]] = {}  # peer -> IPs where it ranks before this node

    def put(self, ip: str, claims: Claims) -> None:
        """IP's claims are CLAIMS from now on (() drops the IP). Only the peers that moved in or out
        of the ahead-of-me set are touched in the index: a re-ranking costs what it changed."""
        old, new = _peers(self.claims.get(ip, ())), _peers(claims)
        for peer in old - new:
            ips = self._ahead[peer]
            ips.discard(ip)
            if not ips:
                del self._ahead[peer]
        for peer in new - old:
            self._ahead.setdefault(peer, set()).add(ip)
        if claims:
            self.claims[ip] = claims
        else:
            self.claims.pop(ip, None)

    def update(self, changes: Mapping[str, Claims]) -> None:
        """Several IPs' claims at once."""
        for ip, claims in changes.items():
            self.put(ip, claims)

    @property
    def mine(self) -> Collection[str]:
        """Every IP this node has a claim on (the only ones it may ever answer for)."""
        return self.claims.keys()

    def affected_by(self, peer: str) -> frozenset[str]:
        """IPs whose owner-is-me may change when PEER dies or comes back."""
        return frozenset(self._ahead.get(peer, ()))

    def interfaces_for(self, ip: str, alive: Collection[str], me: str) -> frozenset[str] | None:
        """The interfaces ME answers IP on, given ALIVE (None: not mine)."""
        if me not in alive:
            return None
        out: frozenset[str] | None = None
        for claim in self.claims.get(ip, ()):
            if claim.ahead.isdisjoint(alive):
                out = claim.interfaces if out is None else out | claim.interfaces
        return out


def _peers(claims: Claims) -> frozenset[str]:
    if len(claims) == 1:  # the common case: one Service per IP
        return claims[0].ahead
    return frozenset().union(*(claim.ahead for claim in claims))
