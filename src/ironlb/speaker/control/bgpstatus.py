"""BGP mode's node status: this node's BGPNodeStatus, from FRR's sessions, written on change and at most once a
second (server-side apply of the whole object, owned by the Node so that it goes with it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from ironlb.api.bgp_status import NodeBGPStatus, SessionError, SessionState, SessionStatus
from ironlb.api.conditions import condition, now_stamp
from ironlb.api.reasons import BGPDaemonReason, BGPSessionReason, ConditionType
from ironlb.common.kubeapi import APPLY, NODES, ApiError, Client
from ironlb.common.kubeapi.resources import BGP_NODE_STATUSES
from ironlb.core.bgp.model import Desired, Family, family_of
from ironlb.speaker.bgp.component import FrrState
from ironlb.speaker.bgp.nodedrain import drained_conditions
from ironlb.speaker.bgp.status import Session

log = logging.getLogger(__name__)
FIELD_MANAGER = "ironlb-speaker"
WRITE_TIMEOUT = (5.0, 10.0)
MIN_INTERVAL_S = 1.0  # at most one write a second, however often the sessions change
CHECK_INTERVAL_S = 0.2  # how often the sessions read from FRR are compared with what was written


class Source(Protocol):
    """What the writer reads of BGP mode's component: FRR's state and the last sessions read."""

    frr: FrrState
    sessions: list[Session]


def v6_prefixes(desired: Desired) -> dict[str, int]:
    """How many IPv6 prefixes DESIRED sends to each peer (FRR counts both families together)."""
    counts: dict[str, int] = {}
    for peer, prefix in desired.routes():
        if family_of(prefix) is Family.V6:
            counts[peer] = counts.get(peer, 0) + 1
    return counts


def session_status(peer: str, session: Session | None, since: str, error: SessionError | None,
                   v6_wanted: int) -> SessionStatus:
    """One BGPPeer's session as BGPNodeStatus says it (Idle when FRR has no such neighbor)."""
    if session is None:
        return SessionStatus(peer=peer, state=SessionState.IDLE, since=since, last_error=error)
    state = session.state
    up = state is SessionState.ESTABLISHED
    v6 = min(v6_wanted, session.prefixes_sent)
    return SessionStatus(
        peer=peer, state=state, since=since, peer_address="" if session.neighbor.isalpha() else session.neighbor,
        interface=session.neighbor if session.neighbor.isalpha() else "", vrf=session.vrf,
        bfd=session.bfd, hold_time_s=session.hold_time_ms // 1000 if up else None,
        keepalive_time_s=session.keepalive_ms // 1000 if up else None,
        prefixes_sent_ipv4=session.prefixes_sent - v6, prefixes_sent_ipv6=v6, last_error=error)


class NodeStatusWriter:
    """Keeps this node's BGPNodeStatus in line with FRR's sessions."""

    def __init__(self, api: Client, me: str, source: Source, desired: Callable[[], Desired],
                 clock: Callable[[], float] = lambda: asyncio.get_running_loop().time()) -> None:
        self.api, self.me, self.source, self.desired, self.clock = api, me, source, desired, clock
        self.written: NodeBGPStatus | None = None
        self.written_at = float("-inf")
        self.writes = 0
        self._since: dict[str, tuple[SessionState, str]] = {}  # peer -> (state, when it entered it)
        self._errors: dict[str, tuple[BGPSessionReason, int, SessionError]] = {}  # peer -> (error, count, as written)
        self._node_uid = ""
        self._v6: tuple[Desired | None, dict[str, int]] = (None, {})  # counted once per Desired, not per check

    def current(self) -> NodeBGPStatus:
        """The status as FRR reports it now (without its write time)."""
        desired = self.desired()
        by_peer = {s.peer: s for s in self.source.sessions if s.peer}
        sessions = [self._session(name, by_peer.get(name), desired) for name in sorted(desired.usable_peers())]
        reason = self.source.frr.daemon_reason
        ready = reason is BGPDaemonReason.READY
        old = next((c for c in (self.written.conditions if self.written else ())
                    if c.get("type") == ConditionType.BGP_DAEMON_READY.value), None)
        since = str(old["lastTransitionTime"]) if old and old.get("reason") == reason.value else now_stamp()
        cond = condition(ConditionType.BGP_DAEMON_READY, ready, reason, f"FRR: {self.source.frr.value}", since=since)
        router_id = next((r.router_id for r in desired.routers().values() if r.router_id), "") or ""
        return NodeBGPStatus(node=self.me, sessions=tuple(sessions), router_id=router_id,
                             conditions=(cond, *drained_conditions(self.source, self.written)))

    def _session(self, peer: str, session: Session | None, desired: Desired) -> SessionStatus:
        state = session.state if session else SessionState.IDLE  # Idle: FRR has no such neighbor
        held = self._since.get(peer)
        if held is None or held[0] is not state:
            held = self._since[peer] = (state, now_stamp())
        error = None
        if session is not None and session.last_error is not None:
            key = (session.last_error, session.established_count)
            kept = self._errors.get(peer)
            if kept is None or kept[:2] != key:
                kept = self._errors[peer] = (*key, SessionError(session.last_error, session.last_error_text,
                                                                now_stamp()))
            error = kept[2]
        if self._v6[0] is not desired:
            self._v6 = (desired, v6_prefixes(desired))
        return session_status(peer, session, held[1], error, self._v6[1].get(peer, 0))

    async def run(self) -> None:
        """Until cancelled: compare, and write when something changed and the last write is a second old."""
        while True:
            try:
                await self.tick()
            except Exception:  # a defect must not end the status writes silently
                log.exception("BGP: BGPNodeStatus could not be made")
            await asyncio.sleep(CHECK_INTERVAL_S)

    async def tick(self) -> bool:
        """Write the status if it changed and MIN_INTERVAL_S passed since the last write; whether it wrote.

        Nothing before the component knows FRR's state (its first update, or FRR found unreachable): a restarted
        speaker's FRR runs on, and its predecessor's status stands until then."""
        if self.source.frr is FrrState.STARTING:
            return False
        now = self.current()
        if self.written is not None and _same(now, self.written):
            return False
        if self.clock() - self.written_at < MIN_INTERVAL_S:
            return False
        stamped = replace(now, updated=now_stamp())
        self.written_at = self.clock()
        try:
            await asyncio.to_thread(self._write, stamped)
        except (ApiError, OSError) as exc:
            log.warning("BGP: could not write BGPNodeStatus %s: %s", self.me, exc)
            return False
        self.written, self.writes = stamped, self.writes + 1
        return True

    def _write(self, status: NodeBGPStatus) -> None:
        if not self._node_uid:
            try:
                self._node_uid = str(self.api.get(NODES, self.me, timeout=WRITE_TIMEOUT)["metadata"]["uid"])
            except (ApiError, OSError, KeyError) as exc:
                log.debug("BGP: the Node's uid is not known (%s): BGPNodeStatus without an owner", exc)
        self.api.request("PATCH", BGP_NODE_STATUSES.path(name=self.me), {"fieldManager": FIELD_MANAGER, "force": True},
                         body=status.to_object(self._node_uid), content_type=APPLY, timeout=WRITE_TIMEOUT)


def _same(a: NodeBGPStatus, b: NodeBGPStatus) -> bool:
    """Equal but for the write time."""
    return replace(a, updated="") == replace(b, updated="")

