"""A drained node that reads FRR back: the routes a previous speaker left announced drain before they go.

FRR outlives the speaker, so a new speaker reads FRR's state back instead of resetting it. On a node that was
drained meanwhile (cordoned, tainted, or its previous speaker stopped mid-drain) the new speaker holds its
routes withdrawn; applied at once, that withdraw drops paths the router still uses, and the flows through the
node with them. So the first apply after FRR is read back drains first what FRR announces that the node would
announce were it not drained: graceful shutdown, the wait for the peers, the settle, then the withdraw
(speaker.bgp.drain). A prefix the desired state no longer has at all goes at once, as it would on a serving
node: its Service is gone or moved, and making it less preferred first keeps no flow alive.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from ironlb.core.bgp.model import Desired


class StartDrain(Enum):
    """What a drained node does with what it finds in FRR before it holds its routes withdrawn."""

    NOTHING_LEFT = "NothingLeft"  # FRR announces nothing the node still has: nothing to wait for
    DRAIN_LEFT = "DrainLeftRoutes"  # routes left at full preference: graceful shutdown, the wait, the settle
    # Routes left with graceful shutdown on: the previous speaker stopped mid-drain. bgpd re-advertised them less
    # preferred when it was set, so only what is still queued is waited for, then the settle.
    FINISH_LEFT_DRAIN = "FinishLeftDrain"


@dataclass(frozen=True)
class Leftover:
    """The step, and the state FRR holds while it drains: FRR's own, with only the prefixes that drain."""

    step: StartDrain
    routes: Desired


def leftover(held: Desired, desired: Desired) -> Leftover:
    """What a drained node drains first of HELD (FRR's state, read back) while its feed wants DESIRED: HELD's
    announcements of the prefixes DESIRED still announces, with HELD's peers, profiles and graceful shutdown."""
    held_prefixes = {prefix for _, prefix in held.routes()}
    kept_prefixes = {prefix for _, prefix in desired.routes(held_prefixes)}
    kept = tuple(a for a in held.announcements if a.prefix in kept_prefixes)
    if not kept:
        return Leftover(StartDrain.NOTHING_LEFT, replace(held, announcements=()))
    step = StartDrain.FINISH_LEFT_DRAIN if held.graceful_shutdown else StartDrain.DRAIN_LEFT
    return Leftover(step, replace(held, announcements=kept))
