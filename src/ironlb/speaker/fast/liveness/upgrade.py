"""Which peers to heartbeat, and in which format: the ring only once every peer up speaks version 3 (pure).

A speaker of today's format (version 2) reads only that, and counts a peer dead that it does not hear every
interval. So while any peer up was last heard in version 2, a node heartbeats every peer,
the full mesh, each in the format it was last heard in; and it sends the peers not known to speak version 3
one version-3 heartbeat every probe period, so that new speakers find each other (an old speaker refuses that
one datagram as an unknown version, and nothing else changes for it). Once no peer up was last heard in
version 2, and more than 2K+1 nodes are up, heartbeats go to the ring neighbours only. A peer not heard yet
holds nothing back: an old one is found by the probes (every peer is sent one each probe period, on the ring
each probe cycle (probes.py), in version 2 until heard) before it can count this node, and a new one would
otherwise keep a whole cluster starting at once on the full mesh. A speaker rolled back to version 2 starts a
new run that speaks version 2 only: its first datagrams, unproven, make every peer send it version 2 again
(`Formats.unproven`), it is proven and heard, and once it still speaks version 2 after being told, every node
is back on the full mesh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from ironlb.speaker.fast.liveness.protocol import RING_VERSION, VERSION, Heartbeat
from ironlb.speaker.fast.liveness.ring import Ring
from ironlb.speaker.fast.liveness.watch import REPAIR_AFTER_TIMEOUTS


class Mode(Enum):
    """Whom a node heartbeats."""

    FULL_MESH = "full-mesh"  # every peer, each in its format
    RING = "ring"  # the ring neighbours, in version 3


@dataclass
class Formats:
    """The format each peer's current run was heard in: the highest one (a new speaker sends version 2 to a
    peer until it hears version 3 from it, so version 2 from a run heard in version 3 is no rollback)."""

    latest: dict[str, int] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)  # peer -> the incarnation `latest` is of
    told: dict[str, tuple[int, float]] = field(default_factory=dict)  # peer -> (its run, when first sent version 3)
    old: set[str] = field(default_factory=set)  # peers whose current run speaks version 2 only
    settle: float = 0.05  # version 2 from a run told this long before is an old speaker's, not one sent meanwhile

    def heard(self, msg: Heartbeat, now: float = 0.0) -> bool:
        """An accepted datagram of MSG.node's, at NOW: a new run's format replaces the old one's (a rollback).
        True if its run should be told now that we speak version 3: it spoke version 2 and was never told.

        A new speaker sends version 2 to a peer until it hears version 3 from it. So a run heard in version 2 is
        told (one version-3 datagram, at once) and is an old speaker only if it still speaks version 2 a while
        after that: two new speakers never put anyone on the full mesh for each other, and an old one does
        within a few of its heartbeats (it sends every interval to a node it counts)."""
        version = VERSION if msg.digest is None else RING_VERSION
        if self.runs.get(msg.node) == msg.incarnation:
            version = max(version, self.latest[msg.node])
        self.latest[msg.node], self.runs[msg.node] = version, msg.incarnation
        if version == RING_VERSION:
            self.old.discard(msg.node)
            return False
        told = self.told.get(msg.node)
        if told is None or told[0] != msg.incarnation:
            return True
        if now - told[1] > self.settle:
            self.old.add(msg.node)
        return False

    def unproven(self, msg: Heartbeat) -> None:
        """A datagram of MSG.node's that proves nothing yet (it does not echo our run), its MAC and source
        checked: if a run other than the one we had in version 3 speaks version 2, the node was rolled back (or
        restarted, and sends version 2 until it hears version 3), and a speaker of version 2 cannot read
        version 3, so it never learns our run, never echoes it and is never heard. It is sent version 2 from
        now on, until its run is heard in version 3. A recording of an older run only makes us send a peer of
        version 3 version 2, which it reads, until its next accepted datagram."""
        if msg.digest is None and self.runs.get(msg.node) != msg.incarnation \
                and self.latest.get(msg.node) == RING_VERSION:
            del self.latest[msg.node]
            self.runs.pop(msg.node, None)

    def sent_version_3(self, name: str, run: int, now: float) -> None:
        """NAME's RUN (-1: not proven, so not told) was sent a version-3 datagram at NOW."""
        if run >= 0 and self.told.get(name, (-1, 0.0))[0] != run:
            self.told[name] = (run, now)

    def forget(self, names: Iterable[str]) -> None:
        """NAMES left the Node list."""
        for name in names:
            self.latest.pop(name, None)
            self.runs.pop(name, None)
            self.told.pop(name, None)
            self.old.discard(name)

    def version_for(self, name: str) -> int:
        """The format to heartbeat NAME in: the one it was last heard in; today's until then."""
        return self.latest.get(name, VERSION)

    def to_probe(self, peers: Iterable[str]) -> list[str]:
        """The PEERS not known to speak version 3: each is sent one version-3 heartbeat a probe period."""
        return [name for name in peers if self.latest.get(name) != RING_VERSION]

    def mode(self, up_count: int, is_up: Callable[[str], bool], k: int) -> Mode:
        """RING once more than 2K+1 nodes are up (UP_COUNT peers and us) and no peer up (IS_UP) was last heard
        in version 2; only the peers heard in version 2 are looked at. A peer not heard yet holds nothing back:
        it is sent version 2 until it is heard, and the probes find an old speaker within a probe cycle."""
        if up_count + 1 <= 2 * k + 1 or any(is_up(name) for name in self.old):
            return Mode.FULL_MESH
        return Mode.RING


def targets(mode: Mode, me: str, peers: Iterable[str], ring: Ring, down: Callable[[str], bool]) -> frozenset[str]:
    """The peers heartbeated every interval in MODE: every peer, or our ring neighbours."""
    if mode is Mode.FULL_MESH:
        return frozenset(peers) - {me}
    return ring.neighbours(me, down)


def join_wait(mode: Mode, timeout: float, interval: float) -> float:
    """How long a joiner waits before it counts itself: until every node must count it. On the full mesh, one
    detection period (every peer hears its heartbeats); on the ring, a notice's way more (its watchers tell
    every node it is alive, and a lost notice is repaired once digests have differed for a while)."""
    detection = timeout + interval
    if mode is Mode.FULL_MESH:
        return detection
    return detection + REPAIR_AFTER_TIMEOUTS * timeout + interval
