"""Ring mode's state in the transport: the Watch over the speaker's table, the mode choice and the alive set.

Kept while the topology is `ring`, in both modes. There is one table of peers, the speaker's (membership.py):
every accepted datagram went through its echo and replay checks once, and the Watch reads its neighbours'
states there. On the full mesh the neighbours' heartbeats reach it too, so its view follows every death agreed;
on the ring, only the neighbours are heartbeated every interval and the view says who else is alive. The
alive set is the neighbours alive by heartbeat, the non-neighbours alive in the view unless their latest
message said they answer for nothing (FENCED, LEAVE), and this node once joined; it is rebuilt only when one
of those moved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum

from ironlb.speaker.fast.liveness.membership import Change, Membership, PeerState
from ironlb.speaker.fast.liveness.protocol import Heartbeat, Kind, Notice, Say
from ironlb.speaker.fast.liveness.ring import Ring
from ironlb.speaker.fast.liveness.upgrade import Formats, Mode
from ironlb.speaker.fast.liveness.watch import Send, Verdict, Watch


class Topology(Enum):
    """Whom heartbeats may go to: the speaker's setting."""

    MESH = "mesh"  # every peer, always (as before the ring)
    RING = "ring"  # the ring neighbours, once every peer up speaks version 3 (upgrade.Formats.mode)


_SEEDED = {PeerState.DEAD: Verdict.DEAD, PeerState.LEFT: Verdict.LEFT}
_COUNTED = (PeerState.ALIVE, PeerState.HELD)  # a neighbour in these states is counted (held: its node forwards)
_ANSWERS_NOTHING = (Kind.FENCED, Kind.LEAVE)


class RingWatch:
    """One node's Watch, over the speaker's table, and the alive set ring mode gives."""

    def __init__(self, table: Membership, names: Iterable[str], now: float,
                 on_verdict: Callable[[str, Verdict, float], None]) -> None:
        self.watch = Watch(table.me, table.incarnation, Ring([table.me, *names]), table, table.timeout,
                           owns_table=False)
        self.watch.on_verdict = on_verdict
        self.watching = False  # suspicions start once this node speaks (join): until then it only listens
        self.quiet: set[str] = set()  # non-neighbours whose latest message said they answer for nothing
        self._quiet_version = 0
        self._key: tuple[object, ...] | None = None
        self._alive: frozenset[str] = frozenset()

    def begin(self, now: float) -> list[Send]:
        """This node speaks from NOW: its neighbours are watched from then (their grace period starts). If it
        was declared dead while it listened, every node is told its refutation now (it was not sent then)."""
        if self.watching:
            return []
        self.watching = True
        self.watch.watched = {}
        self.watch.start(now)
        mine = self.watch.view.get(self.watch.me)
        if mine is None:
            return []
        return [Send(None, Notice(Say.ALIVE, self.watch.me, self.watch.me, mine.incarnation, mine.life))]

    def tick(self, now: float) -> list[Send]:
        """The Watch's round, once this node speaks (the table was ticked by the transport)."""
        return self.watch.tick(now) if self.watching else []

    def set_nodes(self, names: Iterable[str], now: float) -> None:
        """The Node list changed: place every node on the ring again."""
        self.watch.ring = Ring([self.watch.me, *names])
        self.watch.start(now)
        self.quiet &= set(self.watch.ring.index)
        self._key = None

    def seed(self, now: float) -> None:
        """Entering ring mode: take the deaths the table knows (peers out of contact and dead or gone)."""
        table = self.watch.membership
        for name, peer in table.peers.items():
            verdict = _SEEDED.get(peer.state)
            if verdict is not None and not table.in_contact(name, now) and not self.watch.down(name):
                self.watch.assume(name, verdict, max(peer.incarnation, 0), now)

    def take(self, msg: Heartbeat, change: Change | None, now: float) -> list[Send]:
        """A datagram the table accepted (with the CHANGE it made), as the Watch takes it: a notice, a
        neighbour's heartbeat, or a non-neighbour's (its RESTART, FENCED, LEAVE or ALIVE)."""
        watch = self.watch
        if msg.notice is not None:
            return watch.on_notice(msg.notice, now)[1]
        if msg.node not in watch.neighbour_set:
            self._heard_stranger(msg)
            return watch.stray(msg.node, now)
        sends = watch.heard(msg.node, change, now)
        return sends + watch.on_digest(msg.node, msg.digest, now) if msg.digest is not None else sends

    def _heard_stranger(self, msg: Heartbeat) -> None:
        """A non-neighbour's message, fresh by the table's checks: whether it answers for anything now."""
        quiet = msg.kind in _ANSWERS_NOTHING
        if quiet != (msg.node in self.quiet):
            (self.quiet.add if quiet else self.quiet.discard)(msg.node)
            self._quiet_version += 1

    def mode(self, formats: Formats, now: float) -> Mode:
        """RING once more than 2K+1 nodes are up in the view and no peer up was last heard in version 2: only
        those are looked at, so the choice costs the count of old speakers, not of peers. A peer is up if it
        spoke to us lately (whatever the view says: a speaker of version 2 cannot refute a death), or was heard
        in this run and is not down in the view."""
        table, watch = self.watch.membership, self.watch

        def up(name: str) -> bool:
            peer = table.peers.get(name)
            return peer is not None and (table.in_contact(name, now)
                                         or (peer.last_heard is not None and not watch.down(name)))

        alive = watch.alive()
        return formats.mode(len(alive) - (watch.me in alive), up, watch.ring.k)

    def alive(self, counts_self: bool) -> frozenset[str]:
        """Neighbours alive by heartbeat, non-neighbours alive in the view and not quiet, and this node when
        COUNTS_SELF. A neighbour not heard since it became one counts as a non-neighbour (its table state is
        that of a peer heard at probe rate) until it is heard, or suspected. Looks at the neighbours' states
        only, and rebuilds the set only when something moved."""
        table, watch = self.watch.membership, self.watch
        by_heartbeat = watch.neighbour_set - (watch.unheard - watch.suspects.keys())
        counted = frozenset(name for name in by_heartbeat
                            if (peer := table.peers.get(name)) is not None and peer.state in _COUNTED)
        key = (counted, by_heartbeat, watch.version, self._quiet_version, counts_self)
        if key != self._key:
            others = watch.alive() - by_heartbeat - self.quiet - {watch.me}
            self._alive, self._key = others | counted | ({watch.me} if counts_self else frozenset()), key
        return self._alive
