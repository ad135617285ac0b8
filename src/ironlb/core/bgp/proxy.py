"""Next hops announced on a node's behalf (third-party next hop, RFC 4271 §5.1.3), so that a dead node's path
leaves the router when the survivors' heartbeats say it died, not when the router's BFD or hold timer does.

For one prefix and one peer (a router on the nodes' shared subnet): the carriers are the alive nodes whose own
path the router should hold (the announce decision's nodes), the holders the alive nodes with a session to that
peer. No carrier's path goes over its own session: each holder announces at most one carrier's path (a session
carries one path per prefix), with that carrier's address as the next hop. The carriers in name order form a
ring and each carries the one before it; holders that carry no path of their own take whole rounds of the
carriers, so that every carrier has as many paths at the router as every other (equal ECMP shares). When a
node dies, the survivors drop it from both sets: the path with its next hop is replaced over their live
sessions at once, and what its own dead session carried is carried again by the survivors.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum


class CarryReason(Enum):
    """Why this node announces a path for a prefix to a peer with the next hop it does, or none."""

    FOR_PEER = "ForPeer"  # the path of another carrier, with that carrier's next hop
    CARRIED_BY_OTHERS = "CarriedByOthers"  # this node is the only carrier: the other holders announce its path
    ALONE = "Alone"  # no other holder: its own path over its own session (BFD or the hold timer is the backstop)
    SPARE = "Spare"  # a holder beyond the carriers' whole rounds: it announces none (ECMP shares stay equal)
    NO_CARRIER = "NoCarrier"  # no alive node should be a next hop of the prefix
    NO_SESSION = "NoSession"  # this node holds no session to the peer


@dataclass(frozen=True)
class Carry:
    """The node whose address this node announces as the prefix's next hop (None: it announces no path)."""

    reason: CarryReason
    next_hop_of: str | None = None


def carry(me: str, carriers: Collection[str], holders: Collection[str]) -> Carry:
    """Whose path ME announces for one prefix to one peer, from the alive CARRIERS and the alive HOLDERS."""
    ring = sorted(set(carriers))
    others = sorted(set(holders) - {me})
    if me not in holders:
        return Carry(CarryReason.NO_SESSION)
    if not ring:
        return Carry(CarryReason.NO_CARRIER)
    if me in ring:
        if not others:
            return Carry(CarryReason.ALONE, me)
        if len(ring) == 1:
            return Carry(CarryReason.CARRIED_BY_OTHERS)
        return Carry(CarryReason.FOR_PEER, ring[ring.index(me) - 1])
    spares = sorted(set(holders) - set(ring))
    rounds = len(spares) // len(ring) * len(ring)
    index = spares.index(me)
    if index >= rounds:
        return Carry(CarryReason.SPARE)
    return Carry(CarryReason.FOR_PEER, ring[index % len(ring)])
