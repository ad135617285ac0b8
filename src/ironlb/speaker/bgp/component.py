"""BGP mode in the speaker's lifecycle: keeps FRR at the desired state, reads its sessions, drains on the way out.

The integration feeds it: `update(desired, touched)` whenever the Services, endpoints or BGP objects change what
this node announces; `drain()` on SIGTERM (final: the sessions close, and nothing is applied after it);
`drain(cause, final=False)` when its own Node says it is going (speaker.bgp.nodedrain) and `undrain()` when it
is back; `frr`, `sessions`, `drained` and `leftover` for status. While drained, every update keeps the routes
withdrawn; what a previous speaker left announced in FRR is drained first (core.bgp.startdrain).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from enum import Enum

from ironlb.api.reasons import BGPDaemonReason
from ironlb.core.bgp.model import Desired
from ironlb.core.bgp.nodedrain import DrainCause
from ironlb.core.bgp.startdrain import StartDrain, leftover
from ironlb.speaker.bgp.drain import DrainOutcome, DrainSettings, drain, withdrawn
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

    @property
    def daemon_reason(self) -> BGPDaemonReason:
        """The DaemonReady condition's reason for this state."""
        return {FrrState.IN_SYNC: BGPDaemonReason.READY, FrrState.REFUSED: BGPDaemonReason.CONFIG_REJECTED}.get(
            self, BGPDaemonReason.UNREACHABLE)


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
        self.drained: DrainCause | None = None  # why this node announces nothing (set when its drain starts)
        self.leftover: StartDrain | None = None  # drained, what FRR held when it was read back (None: not read)
        self.stopped = False  # drained for good (SIGTERM): nothing more is applied
        self.fed = False  # an update came: `desired` is the feed's, not the empty one it starts with
        self._lock = asyncio.Lock()

    async def update(self, desired: Desired, touched: set[str] | None = None) -> None:
        """Make DESIRED what FRR holds, at once (TOUCHED: the only prefixes that may have changed)."""
        async with self._lock:
            self.desired, self.fed = desired, True
            await self._apply(touched)

    def held(self) -> Desired:
        """What FRR should hold now: the desired state, or while drained the same without its routes."""
        return withdrawn(self.desired) if self.drained is not None else self.desired

    async def _apply(self, touched: set[str] | None) -> None:
        if self.stopped:
            return  # a change that comes after the final drain must not announce again
        try:
            if self.drained is not None and self.driver.applied is None:
                await self._drain_leftover()
                touched = None  # FRR was read back: every prefix is compared
            await self.driver.apply(self.held(), touched)
            self._set(FrrState.IN_SYNC)
        except VtyUnavailable as e:
            self._set(FrrState.UNREACHABLE, str(e))
        except VtyRefused as e:
            self.refusal = str(e)
            self._set(FrrState.REFUSED, str(e))

    async def _drain_leftover(self) -> None:
        """Drained, and what FRR holds unknown (a new speaker, or a change that failed): the routes FRR announces
        that the desired state still has are drained before they are withdrawn, not dropped at once."""
        self.driver.applied = await self.driver.read_back()
        left = leftover(self.driver.applied, self.desired)
        self.leftover = left.step
        if left.step is StartDrain.NOTHING_LEFT:
            log.info("BGP: drained; FRR read back: %s", left.step.value)
            return
        log.info("BGP: drained; FRR read back: %s (%d prefixes less preferred, then withdrawn)", left.step.value,
                 len(left.routes.announcements))
        outcome = await drain(self.driver, left.routes, self.drain_settings, close=False)
        log.info("BGP: left routes drained: %s", outcome.value)

    def _set(self, state: FrrState, why: str = "") -> None:
        if state is not self.frr:
            (log.info if state is FrrState.IN_SYNC else log.warning)("FRR: %s %s", state.value, why)
        self.frr = state

    async def run(self) -> None:
        """Until cancelled: read the sessions; when FRR was restarted or refused, apply the whole state again.

        Nothing is applied before the feed's first update: a restarted speaker's empty start state would delete
        what FRR holds and reset every session its predecessor had up."""
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.socket_dir, DRAINED_FILE))
        try:
            while True:
                async with self._lock:
                    # Before the feed's first update the empty start state is no one's wish: applied, it would
                    # remove what a previous speaker left (a session reset, routes dropped).
                    if self.fed and self.driver.applied is None:
                        await self._apply(None)
                    try:
                        self.sessions = await self.driver.sessions()
                    except VtyUnavailable as e:
                        self.sessions = []
                        self._set(FrrState.UNREACHABLE, str(e))
                await asyncio.sleep(self.poll_s)
        finally:
            self.driver.close()

    async def drain(self, cause: DrainCause = DrainCause.TERMINATING, final: bool = True) -> DrainOutcome | None:
        """Drain before break (routes less preferred, the peers' wait, withdrawn). FINAL (SIGTERM): the sessions
        close, nothing is applied afterwards, and the frr container may stop. None when FRR could not be drained."""
        outcome = None
        async with self._lock:
            was, self.drained = self.drained, cause
            try:
                # Before the feed's first update a drain waits for it (its first apply drains what FRR holds,
                # _drain_leftover), unless it is final: then what FRR holds is what drains.
                if not self.stopped and ((was is None and self.fed) or final):
                    source = self.held() if was else self.desired
                    if not self.fed:
                        source = self.driver.applied = await self.driver.read_back()
                    outcome = await drain(self.driver, source, self.drain_settings, close=final)
            except (VtyUnavailable, VtyRefused, OSError) as e:
                self.driver.applied = None  # read FRR back before the next change
                log.warning("FRR: drain failed: %s", e)
            self.stopped = self.stopped or final
        if final:
            # a killed node's directory may be gone
            with contextlib.suppress(OSError), open(os.path.join(self.socket_dir, DRAINED_FILE), "w"):
                pass
        log.info("BGP drain (%s): %s", cause.value, outcome.value if outcome else "nothing drained")
        return outcome

    async def undrain(self) -> None:
        """The node is back (uncordoned, untainted): announce again at once (not after a final drain)."""
        async with self._lock:
            if self.drained is None or self.stopped:
                return
            log.info("BGP: %s no more: announcing again", self.drained.value)
            self.drained = self.leftover = None
            await self._apply(None)
