"""Who is alive, from heartbeats; pure (time is passed in), so scenarios are exact in tests."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ironlb.speaker.fast.liveness.protocol import Decoded, Heartbeat, Kind


class PeerState(Enum):
    """A peer's state."""

    ALIVE = "alive"
    DEAD = "dead"
    LEFT = "left"
    FENCED = "fenced"  # heard, but it says it answers for nothing: not in the alive set
    HELD = "held"  # its speaker restarts (it said so), its node forwards: counted alive, answered for


class Change(Enum):
    """Why a peer's state changed."""

    HEARTBEAT_TIMEOUT = "heartbeat-timeout"
    LEFT = "left"
    RECOVERED = "recovered"
    NEW_INCARNATION = "new-incarnation"
    PROVEN = "proven"  # first heartbeat of the peer's that echoed this run: heard, for certain, in this run
    NEVER_HEARD = "never-heard"
    FENCED = "fenced"
    HELD = "held"  # it said its speaker restarts
    HOLD_EXPIRED = "hold-expired"  # held for as long as it asked, and not back
    RELEASED = "released"  # held, until its node stopped answering (the control plane's check)


_HEARD = (PeerState.ALIVE, PeerState.FENCED)
RETIRED_KEPT = 64  # past incarnations of a peer remembered, so their recordings are never accepted again
# Unproven incarnations of a peer echoed in turn until one is proven. A restarted speaker cannot tell a peer's
# current run from a recording of an earlier one (both carry a valid MAC, and incarnations are random, not
# ordered), so it echoes each: the real one is named within this many sends, whatever is replayed after it.
ECHO_CANDIDATES = 8
# The default heartbeat timings (the speaker's flags and the chart's values say the same).
INTERVAL_S = 0.025
TIMEOUT_S = 0.15
MAX_HOLD_S = 600.0  # the longest hold a RESTART may ask for: its clock is ours from then on


@dataclass
class Peer:
    """What we know of one peer."""

    name: str
    state: PeerState = PeerState.ALIVE
    last_heard: float | None = None
    last_contact: float | None = None  # any heartbeat from it, proven or not yet (a replay is none)
    incarnation: int = -1  # its run, as proven by a message echoing ours; -1 until then
    sequence: int = -1
    candidates: dict[int, int] = field(default_factory=dict)  # unproven incarnation -> highest sequence, oldest first
    turn: int = 0  # which candidate the next echo names
    addresses: frozenset[str] = frozenset()  # its node addresses: heartbeats naming it must come from one
    retired: deque[int] = field(default_factory=lambda: deque(maxlen=RETIRED_KEPT))
    held_until: float = 0.0  # HELD: when the hold ends unless it is back or released first
    covers: dict[str, bytes] = field(default_factory=dict)  # HELD, and a while after: IP -> the MAC to answer with
    covers_until: float | None = None  # back from a hold: its covers stand until it counts itself (join)
    expected_since: float = 0.0  # from when it has the grace period to be heard
    check_at: float | None = None  # when the table's deadline heap next looks at it (None: not scheduled)
    table: Membership | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        # Every change of a timed field reaches the table's alive set and deadline heap, whoever makes it.
        object.__setattr__(self, name, value)
        if name in _TIMED and (table := self.__dict__.get("table")) is not None:
            table.changed(self)


# Deadlines are sums (last heard + timeout) while a tick compares differences (now - last heard > timeout):
# a check is taken this much early, so rounding never makes one late (an early one is just scheduled again).
_ROUNDING = 1e-6
_TIMED = frozenset({"state", "last_heard", "held_until", "covers_until"})


@dataclass
class Membership:
    """Peer table: heartbeats in, alive set out. Times are seconds from any monotonic clock."""

    me: str
    started: float
    timeout: float = TIMEOUT_S
    grace: float = 2.0
    incarnation: int = 1  # this speaker's run (protocol.new_incarnation())
    counts_self: bool = True  # False while this node has not joined (see speaker.join)
    last_tick: float | None = None
    peers: dict[str, Peer] = field(default_factory=dict)
    holds_version: int = 0  # moves on whenever a hold or its covers change (the fast plane re-decides then)
    version: int = 0  # moves on whenever a peer enters or leaves the alive set
    _counted: set[str] = field(default_factory=set, init=False, repr=False)  # peers in the alive set (ourselves aside)
    # The alive set, and the version it is of.
    _alive: tuple[tuple[int, bool], frozenset[str]] | None = field(default=None, init=False, repr=False)
    _checks: list[tuple[float, str]] = field(default_factory=list, init=False, repr=False)  # heap of (when, peer)

    def changed(self, peer: Peer) -> None:
        """PEER's state or one of its deadlines changed: keep the alive set and the deadline heap up to date."""
        counted = peer.state in _COUNTED
        if counted != (peer.name in self._counted):
            (self._counted.add if counted else self._counted.discard)(peer.name)
            self.version += 1
        due = self._next_check(peer)
        if due is not None and (peer.check_at is None or due < peer.check_at):
            peer.check_at = due
            heapq.heappush(self._checks, (due, peer.name))

    def _next_check(self, peer: Peer) -> float | None:
        """The earliest time a tick may change PEER, as things stand (None: only a message can)."""
        times = [] if peer.covers_until is None else [peer.covers_until]
        if peer.state is PeerState.HELD:
            times.append(peer.held_until)
        if peer.state in _HEARD:
            times.append(peer.expected_since + self.grace if peer.last_heard is None else
                         peer.last_heard + self.timeout)
        return min(times, default=None)

    def _due(self, now: float) -> list[Peer]:
        """The peers whose check is due by NOW, off the heap (stale entries dropped), in name order."""
        due: dict[str, Peer] = {}
        while self._checks and self._checks[0][0] <= now + _ROUNDING:
            when, name = heapq.heappop(self._checks)
            peer = self.peers.get(name)
            if peer is not None and peer.check_at == when:
                peer.check_at = None
                due[name] = peer
        return [due[name] for name in sorted(due)]

    def alive_version(self) -> tuple[int, bool]:
        """Moves on whenever `alive()` may have changed: compared, never the set itself, on the hot path."""
        return self.version, self.counts_self

    def set_expected(self, names: set[str], addresses: Mapping[str, Iterable[str]] | None = None,
                     since: float | None = None) -> None:
        """The nodes that should be speaking (from the Node list), with their addresses; others are dropped.
        A new one is given the grace period from SINCE to be heard (default: from our start)."""
        for name in names - self.peers.keys() - {self.me}:
            self.peers[name] = peer = Peer(name, expected_since=self.started if since is None else since)
            peer.table = self
            self.changed(peer)
        for name in set(self.peers) - names:
            del self.peers[name]
            if name in self._counted:
                self._counted.discard(name)
                self.version += 1
        for name, peer in self.peers.items():
            if addresses and name in addresses:
                given = addresses[name]
                peer.addresses = frozenset(plain(a) for a in ([given] if isinstance(given, str) else given))

    def on_message(self, msg: Heartbeat, now: float, source: str | None = None) -> tuple[Decoded, Change | None]:
        """Feed one authenticated heartbeat that arrived from address SOURCE."""
        if msg.node == self.me:
            return Decoded.FROM_SELF, None
        peer = self.peers.get(msg.node)
        if peer is None:
            return Decoded.UNKNOWN_PEER, None
        if source is not None and peer.addresses and plain(source) not in peer.addresses:
            return Decoded.WRONG_SOURCE, None
        if not _replayed(peer, msg):
            peer.last_contact = now  # something of it speaks from its address: worth heartbeats at full rate
        if msg.echo != self.incarnation:
            # Made before it heard this run of ours (or recorded earlier): it proves nothing about now, but until
            # something does, its incarnation is one we echo, so that the peer can prove itself to us.
            if peer.incarnation < 0 and msg.incarnation not in peer.retired:
                _candidate(peer, msg)
            return Decoded.UNECHOED, None
        if _replayed(peer, msg):
            return Decoded.REPLAYED, None
        change = None
        if msg.incarnation != peer.incarnation:
            if peer.incarnation >= 0:
                peer.retired.append(peer.incarnation)
                change = Change.NEW_INCARNATION
            else:
                change = Change.PROVEN
            peer.incarnation = msg.incarnation
            peer.candidates.clear()
        peer.sequence = msg.sequence
        if msg.kind is Kind.NOTICE:  # about the ring's view (watch.py), not about the sender's own state
            return Decoded.ACCEPTED, change
        if msg.kind is Kind.LEAVE:
            self.holds_version += peer.state is PeerState.HELD  # a held peer that leaves is held no longer
            peer.state, peer.last_heard = PeerState.LEFT, now
            self._uncover(peer)
            return Decoded.ACCEPTED, Change.LEFT
        peer.last_heard = now
        if msg.kind is Kind.RESTART:
            before = len(peer.covers), peer.state
            change = _hold(peer, msg, now)
            if (len(peer.covers), peer.state) != before:
                self.holds_version += 1
            return Decoded.ACCEPTED, change
        if peer.state is PeerState.HELD:
            if msg.kind is Kind.FENCED:  # its new run is up but not answering yet: the hold stands
                return Decoded.ACCEPTED, change
            # Its new run joined: it counts itself one detection period later; until then we answer too.
            peer.covers_until = now + 2 * self.timeout
            self.holds_version += 1  # no longer held (with nothing to cover, it is out of the held set at once)
        if msg.kind is Kind.FENCED:
            if peer.state is not PeerState.FENCED:
                peer.state, change = PeerState.FENCED, Change.FENCED
        elif peer.state is not PeerState.ALIVE:
            peer.state = PeerState.ALIVE
            change = Change.RECOVERED
        return Decoded.ACCEPTED, change

    def release(self, name: str) -> Change | None:
        """End NAME's hold now (its node no longer answers): it is dead from now on."""
        peer = self.peers.get(name)
        if peer is None or peer.state is not PeerState.HELD:
            return None
        self._end_hold(peer)
        return Change.RELEASED

    def _end_hold(self, peer: Peer) -> None:
        """PEER's hold ends with it dead: a change of the held set whether or not it had covers."""
        peer.state = PeerState.DEAD
        self._uncover(peer)
        self.holds_version += 1

    def _uncover(self, peer: Peer) -> None:
        if peer.covers:
            peer.covers.clear()
            self.holds_version += 1
        peer.covers_until = None

    def in_contact(self, name: str, now: float) -> bool:
        """Has NAME spoken to us (proven or not) within the grace period? Only those are sent heartbeats every
        interval; the rest (dead, powered off, never started) are probed now and then."""
        peer = self.peers.get(name)
        return peer is not None and peer.last_contact is not None and now - peer.last_contact <= self.grace

    def echo_for(self, name: str) -> int:
        """The incarnation to echo in the next heartbeat to peer NAME: its proven one; else each unproven one
        heard in turn, the latest first (0 if never heard). Each call is one send."""
        peer = self.peers.get(name)
        if peer is None:
            return 0
        if peer.incarnation >= 0:
            return peer.incarnation
        if not peer.candidates:
            return 0
        heard = list(peer.candidates)
        peer.turn = (peer.turn + 1) % len(heard)
        return heard[-1 - peer.turn]

    def tick(self, now: float) -> list[tuple[str, Change]]:
        """Expire silent peers; return the changes.

        The first tick after a stall of our own (CPU starved, a long pass) expires no one: the peers'
        heartbeats queued meanwhile are read one per loop turn, so they get one interval to come in."""
        stalled = self.last_tick is not None and now - self.last_tick > self.timeout * 0.75
        self.last_tick = now
        if stalled:
            return []
        changes = []
        due = self._due(now)
        for peer in due:  # in name order: logs and tests read the same
            if peer.covers_until is not None and now >= peer.covers_until:
                self._uncover(peer)
            if peer.state is PeerState.HELD and now > peer.held_until:
                self._end_hold(peer)
                changes.append((peer.name, Change.HOLD_EXPIRED))
            if peer.state not in _HEARD:
                continue
            if peer.last_heard is None:
                if now - peer.expected_since > self.grace:
                    peer.state = PeerState.DEAD
                    changes.append((peer.name, Change.NEVER_HEARD))
            elif now - peer.last_heard > self.timeout:
                peer.state = PeerState.DEAD
                changes.append((peer.name, Change.HEARTBEAT_TIMEOUT))
        for peer in due:  # not yet expired, or with a later deadline: looked at again then
            self.changed(peer)
        return changes

    def heard(self) -> frozenset[str]:
        """Peers heard within the timeout, fenced ones included (they are reachable, not answering)."""
        return frozenset(p.name for p in self.peers.values() if p.state in _HEARD and p.last_heard is not None)

    def known(self) -> frozenset[str]:
        """Peers heard at least once in this run (a Node with no speaker is nobody to be cut off from)."""
        return frozenset(p.name for p in self.peers.values() if p.last_heard is not None)

    def alive(self) -> frozenset[str]:
        """Alive peers (held ones included: their nodes forward), and ourselves once joined."""
        version = self.alive_version()
        if self._alive is None or self._alive[0] != version:
            me = [self.me] if self.counts_self else []
            self._alive = version, frozenset([*me, *self._counted])
        return self._alive[1]

    def held(self) -> frozenset[str]:
        """Peers whose IPs are answered for with their MACs: held ones, and ones just back from a hold."""
        return frozenset(p.name for p in self.peers.values() if p.state is PeerState.HELD or p.covers)

    def covers(self) -> dict[str, bytes]:
        """IP -> the MAC to answer it with, for every held peer's IPs."""
        out: dict[str, bytes] = {}
        for peer in self.peers.values():
            out.update(peer.covers)
        return out


_COUNTED = (PeerState.ALIVE, PeerState.HELD)


def _hold(peer: Peer, msg: Heartbeat, now: float) -> Change | None:
    """PEER's speaker restarts: hold its IPs for it (MSG is one of its RESTARTs, each with some of them)."""
    if peer.state is not PeerState.HELD:
        peer.covers.clear()
    peer.covers.update(msg.covers)
    peer.covers_until = None
    peer.held_until = now + min(msg.hold_ms / 1000, MAX_HOLD_S)
    if peer.state is PeerState.HELD:
        return None
    peer.state = PeerState.HELD
    return Change.HELD


def _candidate(peer: Peer, msg: Heartbeat) -> None:
    """Learn MSG's unproven incarnation, or refresh it if MSG is newer than any heard of it (a recording of
    one already heard refreshes nothing); the least recently refreshed is forgotten past ECHO_CANDIDATES."""
    if msg.sequence <= peer.candidates.get(msg.incarnation, -1):
        return
    peer.candidates.pop(msg.incarnation, None)
    peer.candidates[msg.incarnation] = msg.sequence  # the most recently refreshed last
    while len(peer.candidates) > ECHO_CANDIDATES:
        del peer.candidates[next(iter(peer.candidates))]


def _replayed(peer: Peer, msg: Heartbeat) -> bool:
    """Is MSG a recording: from a past run of PEER's, or not newer than the last one accepted?"""
    return msg.incarnation in peer.retired or (msg.incarnation == peer.incarnation and msg.sequence <= peer.sequence)


def plain(address: str) -> str:
    """An address without the IPv4-mapped IPv6 prefix a dual-stack socket reports."""
    return address[7:] if address.startswith("::ffff:") else address
