"""What a node sends on the heartbeat socket: its heartbeats, each peer's in its format, format probes, RESTARTs
and ring mode's notices (split out of transport.py: the Liveness it is a base of holds the state it reads)."""

from __future__ import annotations

import errno
import logging
import socket
import time

from ironlb.common.throttle import Throttle
from ironlb.speaker.fast.liveness.membership import Membership
from ironlb.speaker.fast.liveness.protocol import (
    COVERS_PER_MESSAGE,
    RING_VERSION,
    VERSION,
    Heartbeat,
    KeySet,
    Kind,
    Notice,
    encode,
)
from ironlb.speaker.fast.liveness.ringmode import RingWatch
from ironlb.speaker.fast.liveness.rounds import Counters
from ironlb.speaker.fast.liveness.upgrade import Formats, Mode
from ironlb.speaker.fast.liveness.watch import Send

# Peers we have not heard from lately get a probe every PROBE_S, not a heartbeat every interval (udpsocket.py:
# an unresolved peer's datagrams fill the send buffer).
PROBE_S = 0.5
# Rounds that repeat every cover of a RESTART (a datagram may be lost); the later ones only renew the hold.
FULL_RESTART_ROUNDS = 3
EMPTY_VIEW = 0  # the digest of a view with no entry (liveness/watch.py): what a node without a view sends

log = logging.getLogger("ironlb.speaker.fast.liveness.transport")  # one logger for the heartbeat exchange


class Sends:
    """The sending half of a node's heartbeat exchange (transport.Liveness sets every field below)."""

    me: str
    port: int
    interval: float
    key: KeySet
    incarnation: int
    sequence: int
    membership: Membership
    peers: dict[str, str]
    formats: Formats
    mode: Mode
    ring: RingWatch | None
    counters: Counters
    speaking: bool
    _sock: socket.socket | None
    _next_probe: float
    _restart: tuple[int, list[tuple[tuple[str, bytes], ...]]] | None
    _restart_rounds: int
    _send_error_log: Throttle

    def _probe_period(self, mode: Mode | None = None) -> float:
        """How often every peer is sent a heartbeat, silent ones included. On the ring, half the grace period: the
        non-neighbours stay in contact (their messages echo our run, so the table checks their RESTART, FENCED
        and LEAVE as a neighbour's) at a cost of one datagram per peer in that time."""
        if (mode or self.mode) is Mode.RING:
            return max(PROBE_S, self.membership.grace / 2, self.interval)
        return max(PROBE_S, self.interval)

    def _route(self, sends: list[Send]) -> None:
        """Send ring mode's notices: to one node, or to every node (none before the join: a node that only
        listens has nothing to tell, and is no one's to refute a death of)."""
        if not self.speaking:
            return
        for send in sends:
            names = self.peers if send.to is None else [send.to]
            for name in names:
                addr = self.peers.get(name)
                if addr is not None:
                    self._send(addr, self._message(Kind.NOTICE, name, RING_VERSION, notice=send.notice),
                               heartbeat=False)
                    self.counters.notices_sent += 1

    def restart(self, hold_s: float, covers: dict[str, bytes]) -> None:
        """Tell every peer this speaker restarts and its node forwards: from now on each round says RESTART
        (with COVERS, the IPs it answered for and their MACs, in the first few rounds), never ALIVE again."""
        items = sorted(covers.items())
        chunks = [tuple(items[i:i + COVERS_PER_MESSAGE]) for i in range(0, len(items), COVERS_PER_MESSAGE)]
        self._restart, self._restart_rounds = (max(1, round(hold_s * 1000)), chunks or [()]), 0
        self._send_restart()

    def _send_restart(self) -> None:
        assert self._restart is not None
        hold_ms, chunks = self._restart
        for chunk in chunks if self._restart_rounds < FULL_RESTART_ROUNDS else [()]:
            self._send_all(Kind.RESTART, everyone=True, hold_ms=hold_ms, covers=chunk)
        self._restart_rounds += 1

    def _message(self, kind: Kind, peer: str, version: int, hold_ms: int = 0,
                 covers: tuple[tuple[str, bytes], ...] = (), notice: Notice | None = None) -> bytes:
        self.sequence += 1
        view = EMPTY_VIEW if self.ring is None else self.ring.watch.digest  # topology mesh: no view kept
        digest = None if version == VERSION else view
        msg = Heartbeat(kind, self.me, self.incarnation, self.sequence, self.membership.echo_for(peer), hold_ms,
                        covers, digest, notice)
        return encode(msg, self.key)

    def _send_all(self, kind: Kind, everyone: bool = False, hold_ms: int = 0,
                  covers: tuple[tuple[str, bytes], ...] = ()) -> None:
        if self._sock is None:
            return
        now = time.monotonic()
        format_probes: frozenset[str] = frozenset()
        if now >= self._next_probe:  # this round goes to the silent peers too
            everyone, self._next_probe = True, now + self._probe_period()
            if kind in (Kind.ALIVE, Kind.FENCED):
                format_probes = frozenset(self.formats.to_probe(self.peers))
        targets = self.peers
        if self.ring is not None and self.mode is Mode.RING and not everyone:  # the neighbours only
            targets = {name: self.peers[name] for name in self.ring.watch.neighbour_set if name in self.peers}
        for name, addr in targets.items():
            if not everyone and not self.membership.in_contact(name, now):
                continue
            # each peer's own message: it echoes that peer's run
            self._send(addr, self._message(kind, name, self.formats.version_for(name), hold_ms, covers))
            if name in format_probes:
                self._tell(name, addr, kind)

    def _tell(self, name: str, addr: str, kind: Kind) -> None:
        """One version-3 heartbeat to NAME besides (a format probe): its run learns we speak it."""
        self._send(addr, self._message(kind, name, RING_VERSION), heartbeat=False)
        peer = self.membership.peers.get(name)
        self.formats.sent_version_3(name, -1 if peer is None else peer.incarnation, time.monotonic())

    def _send(self, addr: str, data: bytes, heartbeat: bool = True) -> None:
        """One datagram to the peer at ADDR; HEARTBEAT: count it as one (a format probe is not)."""
        assert self._sock is not None
        target = f"::ffff:{addr}" if ":" not in addr else addr
        try:  # straight to the socket, never queued behind one full send
            self._sock.sendto(data, (target, self.port))
            self.counters.datagrams_sent += 1
            self.counters.sent += heartbeat
        except BlockingIOError:
            self.counters.unsent += 1
        except OSError as exc:  # a peer we cannot reach must not stop the others, nor pass unseen
            self._refused(addr, exc)

    def _refused(self, addr: str, exc: OSError) -> None:
        """The kernel refused a datagram to ADDR (no route, a firewall): counted as unsent, and logged at most
        once a while per reason, so that heartbeats never vanish without a trace. (A datagram dropped for want
        of buffer space, a full neighbour table's included, is not refused: UDP reports no ENOBUFS.)"""
        self.counters.unsent += 1
        reason = errno.errorcode.get(exc.errno or 0, "unknown")
        self.counters.send_errors[reason] = self.counters.send_errors.get(reason, 0) + 1
        if (suppressed := self._send_error_log.allow(reason)) is not None:
            log.warning("the kernel refused a heartbeat to %s (%s; %d more refused since the last warning): "
                        "peers may count this node dead", addr, reason, suppressed)
