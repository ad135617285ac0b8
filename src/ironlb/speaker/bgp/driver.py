"""The FRR driver: what FRR holds, read back at start; after that, only the changes, one batch each."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ironlb.core.bgp.diff import Change, plan
from ironlb.core.bgp.model import Desired
from ironlb.speaker.bgp.readback import read_desired
from ironlb.speaker.bgp.render import Daemon, render
from ironlb.speaker.bgp.status import Session, sessions
from ironlb.speaker.bgp.vty import Vty, VtyRefused, VtyUnavailable

log = logging.getLogger("ironlb.speaker.bgp")


# Upper bounds of the batch-duration histogram, seconds: an announce or withdraw is one short vty exchange.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class ApplyStats:
    """The command batches sent to FRR (one update: the batches of one change), for metrics: how many updates,
    how many failed, and how long each took (a histogram over BUCKETS)."""

    applied: int = 0
    failed: int = 0
    seconds_sum: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))  # per bound, not cumulative

    def observe(self, seconds: float, ok: bool) -> None:
        """One update that took SECONDS; OK: FRR took every batch."""
        self.applied, self.failed = self.applied + ok, self.failed + (not ok)
        self.seconds_sum += seconds
        index = next((i for i, bound in enumerate(BUCKETS) if seconds <= bound), None)
        if index is not None:
            self.buckets[index] += 1


class FrrDriver:
    """Drives the FRR whose vty sockets are in SOCKET_DIR (bgpd.vty, bfdd.vty)."""

    def __init__(self, socket_dir: str, timeout_s: float = 5.0) -> None:
        self.vtys = {d: Vty(f"{socket_dir}/{d.value}.vty", timeout_s) for d in Daemon}
        self.applied: Desired | None = None  # what FRR holds; None: unknown, read it back before the next change
        self.stats = ApplyStats()

    async def read_back(self) -> Desired:
        """What FRR holds now, from bgpd's and bfdd's running configs."""
        bgpd = await self.vtys[Daemon.BGPD].show("show running-config")
        bfdd = await self.vtys[Daemon.BFDD].show("show running-config")
        return read_desired(bgpd, bfdd)

    async def apply(self, desired: Desired, touched: set[str] | None = None) -> list[Change]:
        """Bring FRR to DESIRED: only the changes (TOUCHED: the prefixes that may have changed).

        When what FRR holds is unknown (start, a speaker restart, bgpd restarted) it is read back first, so a
        restarted speaker sends nothing that resets a session and a restarted bgpd gets the whole config.
        """
        try:
            held = self.applied
            if held is None:
                held, touched = await self.read_back(), None
                self.applied = held
            changes, after = plan(held, desired, touched)
            await self._send(changes)
        except (VtyUnavailable, VtyRefused):
            self.applied = None  # a batch may have stopped half way: read FRR back next time
            raise
        self.applied = after
        return changes

    async def _send(self, changes: list[Change]) -> None:
        """CHANGES' command batches, one after the other, timed (an empty change sends nothing, counts nothing)."""
        batches = render(changes)
        if not batches:
            return
        start, ok = time.monotonic(), False
        try:
            for batch in batches:
                await self.vtys[batch.daemon].configure(batch.commands)
            ok = True
        finally:
            self.stats.observe(time.monotonic() - start, ok)

    async def sessions(self) -> list[Session]:
        """Every neighbor's session, as bgpd reports it (VtyUnavailable when bgpd cannot be asked)."""
        try:
            return sessions(await self.vtys[Daemon.BGPD].show("show bgp vrf all neighbors json"))
        except VtyUnavailable:
            self.applied = None
            raise

    def close(self) -> None:
        """Close the vty connections."""
        for vty in self.vtys.values():
            vty.close()
