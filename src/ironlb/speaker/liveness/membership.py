"""Who is alive, from heartbeats; pure (time is passed in), so scenarios are exact in tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ironlb.speaker.liveness.protocol import Decoded, Heartbeat, Kind


class PeerState(Enum):
    """A peer's state."""

    ALIVE = "alive"
    DEAD = "dead"
    LEFT = "left"


class Change(Enum):
    """Why a peer's state changed."""

    HEARTBEAT_TIMEOUT = "heartbeat-timeout"
    LEFT = "left"
    RECOVERED = "recovered"
    NEW_INCARNATION = "new-incarnation"
    NEVER_HEARD = "never-heard"


@dataclass
class Peer:
    """What we know of one peer."""

    name: str
    state: PeerState = PeerState.ALIVE
    last_heard: float | None = None
    incarnation: int = -1
    sequence: int = -1


@dataclass
class Membership:
    """Peer table: heartbeats in, alive set out. Times are seconds from any monotonic clock."""

    me: str
    started: float
    timeout: float = 0.4
    grace: float = 2.0
    max_skew_ms: int = 30_000
    counts_self: bool = True  # False while this node has not joined (see speaker.join)
    last_tick: float | None = None
    peers: dict[str, Peer] = field(default_factory=dict)

    def set_expected(self, names: set[str]) -> None:
        """The nodes that should be speaking (from the Node list); unknown ones are dropped."""
        for name in names - self.peers.keys() - {self.me}:
            self.peers[name] = Peer(name)
        for name in set(self.peers) - names:
            del self.peers[name]

    def on_message(self, msg: Heartbeat, now: float, wall_ms: int) -> tuple[Decoded, Change | None]:
        """Feed one authenticated heartbeat."""
        if msg.node == self.me:
            return Decoded.FROM_SELF, None
        if abs(wall_ms - msg.sent_ms) > self.max_skew_ms:
            return Decoded.STALE, None
        peer = self.peers.get(msg.node)
        if peer is None:
            peer = self.peers[msg.node] = Peer(msg.node)
        if msg.incarnation < peer.incarnation or (
                msg.incarnation == peer.incarnation and msg.sequence <= peer.sequence):
            return Decoded.REPLAYED, None
        change = None
        if msg.incarnation > peer.incarnation and peer.incarnation >= 0:
            change = Change.NEW_INCARNATION
        peer.incarnation, peer.sequence = msg.incarnation, msg.sequence
        if msg.kind is Kind.LEAVE:
            peer.state, peer.last_heard = PeerState.LEFT, now
            return Decoded.ACCEPTED, Change.LEFT
        peer.last_heard = now
        if peer.state is not PeerState.ALIVE:
            peer.state = PeerState.ALIVE
            change = Change.RECOVERED
        return Decoded.ACCEPTED, change

    def tick(self, now: float) -> list[tuple[str, Change]]:
        """Expire silent peers; return the changes.

        The first tick after a stall of our own (CPU starved, a long pass) expires no one: the peers'
        heartbeats queued meanwhile are read one per loop turn, so they get one interval to come in."""
        stalled = self.last_tick is not None and now - self.last_tick > self.timeout * 0.75
        self.last_tick = now
        if stalled:
            return []
        changes = []
        for _, peer in sorted(self.peers.items()):  # stable order: logs and tests read the same
            if peer.state is not PeerState.ALIVE:
                continue
            if peer.last_heard is None:
                if now - self.started > self.grace:
                    peer.state = PeerState.DEAD
                    changes.append((peer.name, Change.NEVER_HEARD))
            elif now - peer.last_heard > self.timeout:
                peer.state = PeerState.DEAD
                changes.append((peer.name, Change.HEARTBEAT_TIMEOUT))
        return changes

    def alive(self) -> frozenset[str]:
        """Alive peers, and ourselves once joined."""
        me = [self.me] if self.counts_self else []
        return frozenset([*me, *(p.name for p in self.peers.values() if p.state is PeerState.ALIVE)])
