"""Runs the self-fencing decision (speaker.fencing) against the live speaker: heartbeats, carrier, API.

Every PERIOD it reads what the heartbeats hear and whether an announce interface has carrier; while
no peer is heard (past the grace period) it also probes the API: the peers' presence
(speaker.presence: node Leases, speaker Pods). When this node starts or stops hearing peers it
reports so on its own Pod (a write on that change only), so an isolated peer reads whether it is
alone. Losing one peer while others are heard writes nothing. A fencing decision makes Liveness send FENCED
heartbeats and stop counting this node, so the desired state gives it no IP and its peers take
them over. Leaving the fence goes through the join gate: kube-proxy synced, then `Liveness.join()`
(peers hear us before we count ourselves, so the current owners let go as we take over).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from ironlb.common.kubeapi import ApiError
from ironlb.common.throttle import Throttle
from ironlb.speaker.control.fencing import FENCING, ApiProbe, Evidence, Fence, FenceDecision
from ironlb.speaker.control.presence import Presence
from ironlb.speaker.fast.liveness.membership import Membership

log = logging.getLogger(__name__)


class Heartbeats(Protocol):
    """What the Fencer needs of the heartbeat exchange (the fast plane, or a Liveness in tests)."""

    me: str

    @property
    def membership(self) -> Membership:
        """The peer table: who is known, who is heard."""

    def fence(self) -> None:
        """Stop counting ourselves; tell peers (FENCED heartbeats)."""


class Fencer:
    """Watches for isolation; fences and unfences the speaker."""

    def __init__(self, liveness: Heartbeats, presence: Presence, carrier: Callable[[], bool],
                 rejoin: Callable[[], Awaitable[object]], period: float = 0.2, probe_period: float = 1.0,
                 fence: Fence | None = None) -> None:
        self.liveness, self.presence, self.carrier, self.rejoin = liveness, presence, carrier, rejoin
        self.period, self.probe_period = period, probe_period
        self.fence = fence or Fence(me=liveness.me)
        self.decision = FenceDecision.NO_PEERS_EXPECTED
        self.fences: dict[str, int] = {}  # times fenced, by reason
        self._last_probe = 0.0
        self._was_silent: bool | None = None  # unknown: the first step reports either way
        self._errors = Throttle(60.0)

    def probe(self) -> Evidence:
        """One look at the API: the presence of every peer whose speaker runs (blocking)."""
        try:
            return Evidence(ApiProbe.REACHABLE, self.presence.read())
        except ApiError as exc:
            if exc.status not in (403, 404):  # a 5xx is a control plane that cannot serve us: unreachable
                return Evidence(ApiProbe.UNREACHABLE)
            if self._errors.allow("presence") is not None:  # it answered: reachable, but no proof of life
                log.warning("cannot read speaker presence (%s %s): no peer can be proven alive", exc.status,
                            exc.reason)
            return Evidence(ApiProbe.REACHABLE)
        except Exception:  # timeouts, refused connections, resets: the API is out of reach
            return Evidence(ApiProbe.UNREACHABLE)

    async def step(self) -> FenceDecision:
        """One decision, and what it implies (fence now, or rejoin through the join gate)."""
        now = time.monotonic()
        members = self.liveness.membership
        known, heard = members.known(), members.heard()
        if (silent := not heard) != self._was_silent:
            self._was_silent = silent
            self.presence.nudge()  # peers weighing their own silence read whether we are alone
        evidence = None
        if self.fence.wants_probe(now) and now - self._last_probe >= self.probe_period:
            self._last_probe = now
            evidence = await asyncio.to_thread(self.probe)
        decision = self.fence.observe(time.monotonic(), len(known), len(heard), self.carrier(), evidence)
        if decision is not self.decision:
            log.log(logging.WARNING if decision in FENCING else logging.INFO, "fencing: %s (heard %d of %d peers)",
                    decision.value, len(heard), len(known))
        was_fenced, self.decision = self.decision in FENCING, decision
        if decision in FENCING and not was_fenced:
            self.fences[decision.value] = self.fences.get(decision.value, 0) + 1
            self.liveness.fence()
        elif was_fenced and decision not in FENCING:
            await self.rejoin()
        return decision

    async def run(self) -> None:
        """Decide every period until cancelled."""
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # fencing must not die silently: say so and try again next period
                if self._errors.allow("step") is not None:
                    log.exception("fencing step failed")
            await asyncio.sleep(self.period)
