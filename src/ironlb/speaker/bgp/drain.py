"""Drain before break: make this node's routes less preferred (RFC 8326), wait for the peers, withdraw, close.

How the wait decides: bgpd re-advertises every route with the GRACEFUL_SHUTDOWN community when
`bgp graceful-shutdown` is set. Once every Established session that carried routes has sent UPDATEs since
then and has nothing left in its output queue, the peers hold the less preferred paths; a settle time then
lets them run best-path and program their FIBs (the node cannot see a router's FIB). The whole wait is
bounded: a peer that never acknowledges does not hold a node's shutdown. When FRR already has graceful shutdown
on (a previous speaker stopped mid-drain, core.bgp.startdrain), bgpd re-advertised the routes when it was set
and sends no new UPDATE for them: the wait is for the output queues alone. The settle is kept, as this speaker
cannot tell how much of it the previous one had waited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from ironlb.core.bgp.model import Desired
from ironlb.speaker.bgp.driver import FrrDriver
from ironlb.speaker.bgp.status import SessionState


class DrainOutcome(Enum):
    """How the wait for the peers ended."""

    PEERS_UPDATED = "PeersUpdated"
    NO_SESSIONS = "NoSessions"
    TIMED_OUT = "TimedOut"


@dataclass(frozen=True)
class DrainSettings:
    """The wait's bound, the settle time after the peers took the update, and the polling period (seconds)."""

    bound_s: float = 10.0
    settle_s: float = 2.0
    poll_s: float = 0.05


async def drain(driver: FrrDriver, desired: Desired, settings: DrainSettings | None = None,
                clock: Callable[[], float] = time.monotonic, close: bool = True) -> DrainOutcome:
    """Drain DESIRED's routes from this node's peers, then (CLOSE) close the sessions and leave FRR nothing of
    IronLB's (FRR may outlive the speaker: a node's FRR in the lab, a host's own FRR); without CLOSE the
    sessions stay up with nothing announced, so that announcing again is one batch. DESIRED with graceful
    shutdown already on is FRR's own state, its routes already re-advertised less preferred."""
    settings = settings or DrainSettings()
    before = {s.neighbor: None if desired.graceful_shutdown else s.updates_sent for s in await driver.sessions()
              if s.state is SessionState.ESTABLISHED and s.prefixes_sent > 0}
    await driver.apply(replace(desired, graceful_shutdown=True))
    outcome = await _wait_for_peers(driver, before, settings, clock)
    if outcome is DrainOutcome.PEERS_UPDATED:
        await asyncio.sleep(settings.settle_s)
    await driver.apply(withdrawn(desired))
    if close:
        await driver.apply(Desired(graceful_shutdown=True))
    return outcome


def withdrawn(desired: Desired) -> Desired:
    """DESIRED as a drained node holds it: its peers and profiles, nothing announced, graceful shutdown on."""
    return replace(desired, announcements=(), graceful_shutdown=True)


async def _wait_for_peers(driver: FrrDriver, before: dict[str, int | None], settings: DrainSettings,
                          clock: Callable[[], float]) -> DrainOutcome:
    """Until every session of BEFORE (neighbor: its UPDATEs sent before; None: no new one expected) is down, or
    has sent UPDATEs since and has an empty output queue; or the bound passes."""
    if not before:
        return DrainOutcome.NO_SESSIONS
    deadline = clock() + settings.bound_s
    while clock() < deadline:
        now = {s.neighbor: s for s in await driver.sessions()}
        if all(n not in now or now[n].state is not SessionState.ESTABLISHED
               or ((sent is None or now[n].updates_sent > sent) and now[n].out_queue == 0)
               for n, sent in before.items()):
            return DrainOutcome.PEERS_UPDATED
        await asyncio.sleep(settings.poll_s)
    return DrainOutcome.TIMED_OUT
