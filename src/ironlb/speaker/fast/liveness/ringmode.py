"""Ring mode's state in the transport: the Watch over a Membership of the ring neighbours, and the alive set.

Kept while the topology is `ring`, in both modes: on the full mesh the neighbours' heartbeats reach it too, so
its view follows every death agreed; on the ring, only the neighbours are heartbeated every interval and the
view says who else is alive. The alive set is the neighbours alive by heartbeat, the non-neighbours alive in
the view, and this node once joined; it is rebuilt only when one of those moved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum

from ironlb.speaker.fast.liveness.membership import Membership, PeerState
from ironlb.speaker.fast.liveness.protocol import Decoded, Heartbeat
from ironlb.speaker.fast.liveness.ring import Ring
from ironlb.speaker.fast.liveness.watch import Send, Verdict, Watch


class Topology(Enum):
    """Whom heartbeats may go to: the speaker's setting."""

    MESH = "mesh"  # every peer, always (as before the ring)
    RING = "ring"  # the ring neighbours, once every peer up speaks version 3 (upgrade.Formats.mode)


_SEEDED = {PeerState.DEAD: Verdict.DEAD, PeerState.LEFT: Verdict.LEFT}


class RingWatch:
    """One node's Watch and the alive set ring mode gives."""

    def __init__(self, me: str, incarnation: int, names: Iterable[str], now: float, timeout: float,
                 grace: float, on_verdict: Callable[[str, Verdict, float], None]) -> None:
        table = Membership(me=me, started=now, timeout=timeout, grace=grace, incarnation=incarnation,
                           counts_self=False)
        self.watch = Watch(me, incarnation, Ring([me, *names]), table, timeout)
        self.watch.on_verdict = on_verdict
        self.watch.start(now)
        self._key: tuple[int, int, bool] | None = None
        self._alive: frozenset[str] = frozenset()

    def set_nodes(self, names: Iterable[str], now: float) -> None:
        """The Node list changed: place every node on the ring again."""
        self.watch.ring = Ring([self.watch.me, *names])
        self.watch.start(now)
        self._key = None

    def seed(self, mesh: Membership, now: float) -> None:
        """Entering ring mode: take the deaths the full mesh knows (peers out of contact and dead or gone)."""
        for name, peer in mesh.peers.items():
            verdict = _SEEDED.get(peer.state)
            if verdict is not None and not mesh.in_contact(name, now) and not self.watch.down(name):
                self.watch.assume(name, verdict, max(peer.incarnation, 0), now)

    def take(self, msg: Heartbeat, now: float) -> list[Send]:
        """An accepted datagram, as the Watch takes it: a notice, a neighbour's heartbeat, or a stray one's."""
        watch = self.watch
        if msg.notice is not None:
            return watch.on_notice(msg.notice, now)[1]
        if msg.node not in watch.membership.peers:
            return watch.stray(msg.node, now)
        verdict, change = watch.membership.on_message(msg, now)
        if verdict is not Decoded.ACCEPTED:
            return []
        sends = watch.heard(msg.node, change, now)
        return sends + watch.on_digest(msg.node, msg.digest, now) if msg.digest is not None else sends

    def up(self, mesh: Membership, now: float) -> list[str]:
        """The peers up for the mode decision: speaking to us lately (whatever the view says: a speaker of
        version 2 cannot refute a death), or heard in this run and not down in the view."""
        return [name for name, peer in mesh.peers.items() if mesh.in_contact(name, now)
                or (peer.last_heard is not None and not self.watch.down(name))]

    def alive(self, counts_self: bool) -> frozenset[str]:
        """Neighbours alive by heartbeat, non-neighbours alive in the view, and this node when COUNTS_SELF."""
        table = self.watch.membership
        key = (table.version, self.watch.version, counts_self)
        if key != self._key:
            neighbours = frozenset(table.peers)
            alive = (self.watch.alive() - neighbours - {self.watch.me}) | (table.alive() & neighbours)
            self._alive, self._key = alive | ({self.watch.me} if counts_self else frozenset()), key
        return self._alive
