"""What a node sends on the heartbeat socket: its heartbeats, each peer's in its format, format probes, RESTARTs
and ring mode's notices (split out of transport.py: the Liveness it is a base of holds the state it reads)."""

from __future__ import annotations

import errno
import logging
import socket
import time

from ironlb.common.throttle import Throttle
from ironlb.speaker.fast.liveness.membership import Membership
from ironlb.speaker.fast.liveness.probes import PROBE_S, Rotation, probe_cycle, ring_probe_period
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

# Rounds that repeat every cover of a RESTART (a datagram may be lost); the later ones only renew the hold.
FULL_RESTART_ROUNDS = 3
EMPTY_VIEW = 0  # the digest of a view with no entry (liveness/watch.py): what a node without a view sends
MAX_CATCH_UP = 10  # rounds' worth of probes a round may send after the loop was held up

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
    _rotation: Rotation
    _rotated_at: float | None
    _restart: tuple[int, list[tuple[tuple[str, bytes], ...]]] | None
    _restart_rounds: int
    _send_error_log: Throttle

    def _probe_period(self, mode: Mode | None = None) -> float:
        """How often every peer (on the ring, every neighbour) is sent a heartbeat, silent ones included. On the
        ring, half the grace period; the other peers are probed once a probe cycle, this period or longer in a
        large cluster (probes.py), so that their messages echo our run and the table checks their RESTART,
        FENCED and LEAVE as a neighbour's."""
        if (mode or self.mode) is Mode.RING:
            return ring_probe_period(self.membership.grace, self.interval)
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
        probe_round = now >= self._next_probe
        if probe_round:
            self._next_probe = now + self._probe_period()
        targets, probed = self._targets(everyone, probe_round, now)
        format_probes = frozenset(self.formats.to_probe(probed)) if kind in (Kind.ALIVE, Kind.FENCED) else ()
        for name, addr in targets.items():
            # each peer's own message: it echoes that peer's run
            self._send(addr, self._message(kind, name, self.formats.version_for(name), hold_ms, covers))
            if name in format_probes:
                self._tell(name, addr, kind)

    def _targets(self, everyone: bool, probe_round: bool, now: float) -> tuple[dict[str, str], list[str]]:
        """Whom this round goes to, and which of them are probed (sent one whether they speak to us or not).
        EVERYONE: every peer. The full mesh: the peers in contact, and every peer each probe period. The ring:
        the neighbours in contact or not heard since the ring moved onto them, every neighbour each probe period,
        and the rotation's few (probes.py). A new neighbour is heartbeated at once: in a large cluster it was
        probed too seldom to be in contact, and it has only the grace period to be heard."""
        if everyone or (probe_round and self.mode is not Mode.RING):
            return self.peers, list(self.peers) if probe_round else []
        if self.ring is None or self.mode is not Mode.RING:
            return {name: addr for name, addr in self.peers.items() if self.membership.in_contact(name, now)}, []
        neighbours = [name for name in self.ring.watch.neighbour_set if name in self.peers]
        probed = (neighbours if probe_round else []) + self._rotation.due(self._cycle_share(now))
        unheard = self.ring.watch.unheard
        targets = {name: self.peers[name] for name in neighbours
                   if name in unheard or self.membership.in_contact(name, now)}
        targets.update((name, self.peers[name]) for name in probed if name in self.peers)
        return targets, probed

    def _cycle_share(self, now: float) -> float:
        """The share of the ring's probe cycle since the rotation last ran: the time, so that rounds the loop held
        up do not stretch the cycle (at most MAX_CATCH_UP rounds' worth: a return to the ring sends no burst)."""
        last, self._rotated_at = self._rotated_at, now
        elapsed = self.interval if last is None else min(max(now - last, 0.0), MAX_CATCH_UP * self.interval)
        return elapsed / probe_cycle(len(self.peers), self._probe_period(Mode.RING))

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
