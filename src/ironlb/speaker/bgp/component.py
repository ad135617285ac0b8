"""BGP mode in the speaker's lifecycle: keeps FRR at the desired state, reads its sessions, drains on the way out.

The integration feeds it: `update(desired, touched)` whenever the Services, endpoints or BGP objects change what
this node announces; `drain()` on SIGTERM, cordon or the node-shutdown taint; `frr` and `sessions` for status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from enum import Enum

from ironlb.core.bgp.model import Desired
from ironlb.speaker.bgp.drain import DrainOutcome, DrainSettings, drain
from ironlb.speaker.bgp.driver import FrrDriver
from ironlb.speaker.bgp.status import Session
from ironlb.speaker.bgp.vty import VtyRefused, VtyUnavailable

log = logging.getLogger("ironlb.speaker.bgp")
DRAINED_FILE = "drained"  # in the socket directory: the frr container stops its daemons once it appears


class FrrState(Enum):
    """Whether FRR answers, and whether it holds what the speaker asked for."""

    STARTING = "Starting"
    IN_SYNC = "InSync"
    UNREACHABLE = "Unreachable"
    REFUSED = "Refused"


class BgpComponent:
    """The FRR driver, run for the speaker: one change at a time, status every POLL_S seconds."""

    def __init__(self, socket_dir: str, poll_s: float = 1.0, drain_settings: DrainSettings | None = None) -> None:
        self.socket_dir, self.poll_s = socket_dir, poll_s
        self.drain_settings = drain_settings or DrainSettings()
        self.driver = FrrDriver(socket_dir)
        self.desired = Desired()
        self.frr = FrrState.STARTING
        self.sessions: list[Session] = []
        self.refusal = ""  # FRR's words for the last refused command, for people
        self._lock = asyncio.Lock()

    async def update(self, desired: Desired, touched: set[str] | None = None) -> None:
        """Make DESIRED what FRR holds, at once (TOUCHED: the only prefixes that may have changed)."""
        async with self._lock:
            self.desired = desired
            await self._apply(touched)

    async def _apply(self, touched: set[str] | None) -> None:
        try:
            await self.driver.apply(self.desired, touched)
            self._set(FrrState.IN_SYNC)
        except VtyUnavailable as e:
            self._set(FrrState.UNREACHABLE, str(e))
        except VtyRefused as e:
            self.refusal = str(e)
            self._set(FrrState.REFUSED, str(e))

    def _set(self, state: FrrState, why: str = "") -> None:
        if state is not self.frr:
            (log.info if state is FrrState.IN_SYNC else log.warning)("FRR: %s %s", state.value, why)
        self.frr = state

    async def run(self) -> None:
        """Until cancelled: read the sessions; when FRR was restarted or refused, apply the whole state again."""
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.socket_dir, DRAINED_FILE))
        try:
            while True:
                async with self._lock:
                    if self.driver.applied is None:
                        await self._apply(None)
                    try:
                        self.sessions = await self.driver.sessions()
                    except VtyUnavailable as e:
                        self.sessions = []
                        self._set(FrrState.UNREACHABLE, str(e))
                await asyncio.sleep(self.poll_s)
        finally:
            self.driver.close()

    async def drain(self) -> DrainOutcome | None:
        """Drain before break; then tell the frr container it may stop. None when FRR could not be drained."""
        outcome = None
        async with self._lock:
            try:
                outcome = await drain(self.driver, self.desired, self.drain_settings)
            except (VtyUnavailable, VtyRefused) as e:
                log.warning("FRR: drain failed: %s", e)
        with open(os.path.join(self.socket_dir, DRAINED_FILE), "w"):
            pass
        log.info("BGP drain: %s", outcome.value if outcome else "failed")
        return outcome
