"""Failure detection on the ring: a node's watchers agree on its death and tell every node (pure; times passed in).

Each node heartbeats its ring neighbours only (ring.py), and reads their heartbeats from a Membership: the speaker's
own table of every peer (the watch only reads it), or one the watch keeps to the neighbours (the simulation's
nodes). When one falls silent past the timeout, each of its watchers that noticed SUSPECTs it and says so to its
other watchers; a watcher that still hears it answers HEARD. A watcher declares the subject DEAD, and tells every
node, once a majority of the subject's watchers (itself included) suspect it; or, when its suspicion has lasted
LONE_AFTER and no other watcher hears the subject (the others died with it, or cannot be reached), alone; either
only once its own suspicion has been held for HOLD (a subject whose loop stalled a little past the timeout is heard
again first). Every node keeps a view: each node's verdict (ALIVE, DEAD, LEFT) with the subject's incarnation and a
per-subject `life` counter, as in SWIM and memberlist. A notice is applied only if it is newer: a higher life, or at
the same life a death over a life. A node told it is dead refutes it with ALIVE at the next life, so a recording of
the DEAD notice can never kill it again. Every heartbeat carries the view's digest; a neighbour whose digest stays
different is asked for its view (SYNC), which repairs a notice that was lost on the way. The repair is bounded: a
SYNC is answered with the entries changed lately (at most RECENT_MAX), the whole view only when the same mismatch
asks again (a peer far behind), at most once every FULL_REPAIR_EVERY per peer; a node asks one neighbour less and
less often while their digests stay different, and answers one peer at most once every half repair wait. So a churn
of notices never makes the repair grow with the view.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from ironlb.speaker.fast.liveness.membership import Change, Membership, PeerState
from ironlb.speaker.fast.liveness.protocol import Notice, Say
from ironlb.speaker.fast.liveness.ring import Ring
from ironlb.speaker.fast.liveness.strangers import Strangers

# Timings, in detection timeouts: how long a lone watcher waits for others to hear the subject, and how long
# two neighbours' digests may differ (a notice on its way) before one asks for the other's view.
LONE_AFTER_TIMEOUTS = 3
REPAIR_AFTER_TIMEOUTS = 0.5
# How long a watcher holds its own suspicion before it may declare a death, in timeouts: the failover target
# bounds it (detection is a timeout, this hold and a round).
HOLD_TIMEOUTS = 0.5
# The repair's bounds: a SYNC is answered with the entries changed within RECENT_TIMEOUTS (RECENT_MAX at most,
# the latest first); the whole view goes to one peer at most once every FULL_REPAIR_EVERY_TIMEOUTS, and only to
# a peer asking again within one mismatch; asks to one neighbour back off to one every REPAIR_BACKOFF_TIMEOUTS.
RECENT_TIMEOUTS = 8
RECENT_MAX = 16
FULL_REPAIR_EVERY_TIMEOUTS = 10
REPAIR_BACKOFF_TIMEOUTS = 4


class Verdict(Enum):
    """What a view says of a node."""

    ALIVE = 0
    DEAD = 1
    LEFT = 2


class Repair(Enum):
    """What a SYNC is answered with."""

    RECENT = "recent"  # the entries changed lately, bounded; the whole view to a peer far behind, rate-limited
    WHOLE = "whole"  # the whole view, to every ask (as before the bound: the simulation's "before" figures)


class Learned(Enum):
    """What became of a notice."""

    APPLIED = "applied"
    STALE = "stale"  # not newer than what the view says: a recording, or a notice overtaken by another
    REFUTED = "refuted"  # it says we are dead: we are not, and said so at a higher life
    OTHER_RUN = "other-run"  # about a run of the subject's that is not the one the view knows
    UNKNOWN = "unknown"  # about a node not in the Node list
    NOTED = "noted"  # a SUSPECT, HEARD or SYNC: taken into account


_VERDICT_OF = {Say.DEAD: Verdict.DEAD, Say.LEFT: Verdict.LEFT, Say.ALIVE: Verdict.ALIVE}
_SAY_OF = {verdict: say for say, verdict in _VERDICT_OF.items()}
# At the same life a death wins over a life, and a goodbye over a death (it is what the node said itself): one
# order for every pair of verdicts, so that nodes hearing the same notices in any order end with the same view.
_RANK = {Verdict.ALIVE: 0, Verdict.DEAD: 1, Verdict.LEFT: 2}


@dataclass(frozen=True)
class Send:
    """A notice to send: to one node, or to every node (TO is None)."""

    to: str | None
    notice: Notice


@dataclass(frozen=True)
class Entry:
    """What a view says of one node (a node with no entry is ALIVE at life 0, run not known)."""

    verdict: Verdict = Verdict.ALIVE
    incarnation: int = 0
    life: int = 0


_DEFAULT = Entry()
_ROUNDING = 1e-9  # a hold of exactly HOLD ends at its tick, whatever the float sums say
_HEARING = (PeerState.ALIVE, PeerState.FENCED)  # a peer in these states, heard within the timeout, is heard


def _order(entry: Entry) -> tuple[int, int, bool]:
    """Which of two entries of one run is newer: the higher life; at the same life, the higher rank; at the same
    rank, the one that names the run (a watcher may announce a node it never heard with its run unknown, while
    the node itself names it: both must end as the same entry everywhere, whichever came first)."""
    return entry.life, _RANK[entry.verdict], entry.incarnation != 0


def entry_hash(subject: str, entry: Entry) -> int:
    """A stable hash of one view entry: digests are XORs of these, so each change updates them in O(1)."""
    text = f"{subject}|{entry.verdict.value}|{entry.incarnation}|{entry.life}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


@dataclass
class Watch:
    """One node's view of every node, and its part in watching its ring neighbours."""

    me: str
    incarnation: int
    ring: Ring
    membership: Membership  # heartbeats with the ring neighbours (at least): read, and kept to them if OWNS_TABLE
    timeout: float
    owns_table: bool = True  # the table is the watch's own: it holds the neighbours only, and ticks with the watch
    watched: dict[str, float] = field(default_factory=dict)  # neighbour -> since when we watch it
    neighbour_set: frozenset[str] = frozenset()  # the neighbours watched
    unheard: set[str] = field(default_factory=set)  # neighbours not heard since we began watching them
    view: dict[str, Entry] = field(default_factory=dict)  # only nodes not ALIVE at life 0 with no known run
    digest: int = 0
    version: int = 0  # moves on whenever a node's verdict changes
    suspects: dict[str, float] = field(default_factory=dict)  # subject -> since when we suspect it
    agreed: dict[str, dict[str, float]] = field(default_factory=dict)  # subject -> watcher -> when it suspected it
    heard_by: dict[str, dict[str, float]] = field(default_factory=dict)  # subject -> watcher -> when it heard it
    pressed: dict[str, float] = field(default_factory=dict)  # subject -> when we last said SUSPECT
    mismatch: dict[str, float] = field(default_factory=dict)  # neighbour -> since when its digest differs
    synced: dict[str, float] = field(default_factory=dict)  # neighbour -> when we last asked it for its view
    on_verdict: Callable[[str, Verdict, float], None] | None = None  # told (subject, verdict, now) on each change
    strangers: Strangers = field(default_factory=Strangers)  # runs seen replaced
    hold_timeouts: float = HOLD_TIMEOUTS  # how long a suspicion is held before a death is declared, in timeouts
    repair: Repair = Repair.RECENT
    changed_at: dict[str, float] = field(default_factory=dict)  # subject -> when its entry changed, oldest first
    asks: dict[str, int] = field(default_factory=dict)  # neighbour -> SYNCs sent to it in the current mismatch
    answered: dict[str, float] = field(default_factory=dict)  # peer -> when we last answered its SYNC
    answered_whole: dict[str, float] = field(default_factory=dict)  # peer -> when we last sent it the whole view
    _alive: tuple[int, frozenset[str]] | None = field(default=None, init=False, repr=False)

    def alive(self) -> frozenset[str]:
        """Every node the view has alive, ourselves included (rebuilt only when a verdict changed)."""
        if self._alive is None or self._alive[0] != self.version:
            down = {name for name, e in self.view.items() if e.verdict is not Verdict.ALIVE}
            self._alive = self.version, frozenset(self.ring.order) - down
        return self._alive[1]

    def start(self, now: float) -> None:
        """Watch our neighbours from NOW."""
        self._rewatch(now)

    def _rewatch(self, now: float) -> None:
        """The neighbours, as the view now places them: a new one is watched from NOW (the grace period to be
        heard starts then), one no longer a neighbour is no longer watched."""
        names = self.neighbours()
        for name in self.suspects.keys() - names:  # no longer ours to watch: its own watchers decide
            del self.suspects[name]
            self.pressed.pop(name, None)
        self.unheard = (self.unheard & names) | (names - self.watched.keys())
        self.watched = {name: self.watched.get(name, now) for name in sorted(names)}
        self.neighbour_set = names
        if self.owns_table:
            self.membership.set_expected(set(names), since=now)

    def _silent(self, name: str, since: float, now: float) -> bool:
        """Has neighbour NAME, watched since SINCE, been silent too long: past the timeout once heard since then,
        past the grace period if not (held and gone ones are not silent: their hold, or the goodbye, decides)?"""
        peer = self.membership.peers.get(name)
        if peer is None or peer.state in (PeerState.HELD, PeerState.LEFT):
            return False
        heard = peer.last_heard is not None and peer.last_heard >= since
        if heard and peer.state in _HEARING and now - peer.last_heard <= self.timeout:  # type: ignore[operator]
            return False
        return now - since > (self.timeout if heard else self.membership.grace)

    def entry(self, name: str) -> Entry:
        """What the view says of NAME."""
        return self.view.get(name, _DEFAULT)

    def down(self, name: str) -> bool:
        """Does the view say NAME is dead or gone?"""
        return name in self.view and self.view[name].verdict is not Verdict.ALIVE

    def neighbours(self, name: str | None = None) -> frozenset[str]:
        """NAME's ring neighbours (ours by default), as our view sees who is up: the nodes that watch it."""
        return self.ring.neighbours(self.me if name is None else name, self.down)

    def assume(self, subject: str, verdict: Verdict, incarnation: int, now: float) -> None:
        """Take SUBJECT's VERDICT at life 0 from elsewhere (the full mesh's deaths, entering the ring): any notice
        of a later life overrides it."""
        self._set(subject, Entry(verdict, incarnation or self.entry(subject).incarnation, self.entry(subject).life),
                  now)

    def tick(self, now: float) -> list[Send]:
        """Expire silent neighbours into suspicion, and press or decide every suspicion (the table is ticked
        by its owner first: here if it is the watch's own)."""
        if self.owns_table:
            self.membership.tick(now)
        for name, since in self.watched.items():
            if not self.down(name) and self._silent(name, since, now):
                self.suspects.setdefault(name, now)
        sends: list[Send] = []
        for subject in list(self.suspects):
            sends += self._press(subject, now)
        return sends

    def heard(self, name: str, change: Change | None, now: float) -> list[Send]:
        """A neighbour's heartbeat was accepted (with the CHANGE it made): it is no suspect; if it said goodbye
        or the view has it dead, every node is told."""
        self.suspects.pop(name, None)
        self.unheard.discard(name)
        if change is Change.LEFT:
            return self._decide(name, Verdict.LEFT, now)
        peer = self.membership.peers.get(name)
        if self.down(name) and peer is not None and peer.state in _HEARING:
            entry = self.entry(name)
            run = entry.incarnation or max(peer.incarnation, 0)  # a node declared dead before it was ever heard
            return self._announce(name, Entry(Verdict.ALIVE, run, entry.life + 1), now)
        return []

    def stray(self, name: str, now: float) -> list[Send]:
        """A heartbeat came from NAME, not one of our neighbours: if the view has it down, tell it so (at most
        once a timeout), so that a node declared dead while it was cut off hears it and refutes."""
        if not self.down(name) or now - self.synced.get(name, -self.timeout) < self.timeout:
            return []
        self.synced[name] = now
        entry = self.entry(name)
        return [Send(name, Notice(_SAY_OF[entry.verdict], self.me, name, entry.incarnation, entry.life))]

    def on_digest(self, neighbour: str, digest: int, now: float) -> list[Send]:
        """A neighbour's heartbeat carried DIGEST: ask for its view once they have differed for a while, then
        less and less often while they still differ (each ask says which one it is in this mismatch)."""
        if digest == self.digest:
            self.mismatch.pop(neighbour, None)
            self.asks.pop(neighbour, None)
            return []
        since = self.mismatch.setdefault(neighbour, now)
        asked = self.asks.get(neighbour, 0)
        wait = REPAIR_AFTER_TIMEOUTS * self.timeout
        backoff = wait if self.repair is Repair.WHOLE else min(wait * 2 ** asked,
                                                                 REPAIR_BACKOFF_TIMEOUTS * self.timeout)
        if now - since < wait or now - self.synced.get(neighbour, -backoff) < backoff:
            return []
        self.synced[neighbour] = now
        self.asks[neighbour] = asked + 1
        return [Send(neighbour, Notice(Say.SYNC, self.me, neighbour, life=asked + 1))]

    def _answer(self, asker: str, ask: int, now: float) -> list[Send]:
        """ASKER's SYNC (its ASK-th in one mismatch): the entries changed lately; the whole view if it asks
        again (it is far behind), at most once every FULL_REPAIR_EVERY; nothing to an asker answered just now."""
        if self.repair is Repair.WHOLE:
            return self._entries(asker, list(self.view))
        if now - self.answered.get(asker, -self.timeout) < REPAIR_AFTER_TIMEOUTS * self.timeout / 2:
            return []
        self.answered[asker] = now
        every = FULL_REPAIR_EVERY_TIMEOUTS * self.timeout
        if ask > 1 and now - self.answered_whole.get(asker, -every) >= every:
            self.answered_whole[asker] = now
            return self._entries(asker, list(self.view))
        return self._entries(asker, self.recent(now))

    def recent(self, now: float) -> list[str]:
        """The subjects whose entries changed within RECENT_TIMEOUTS, the latest first, RECENT_MAX at most."""
        names: list[str] = []
        for name in reversed(self.changed_at):
            if len(names) == RECENT_MAX or now - self.changed_at[name] > RECENT_TIMEOUTS * self.timeout:
                break
            if name in self.view:
                names.append(name)
        return names

    def _entries(self, to: str, names: list[str]) -> list[Send]:
        """One notice to TO per subject in NAMES: what the view says of it."""
        return [Send(to, Notice(_SAY_OF[e.verdict], self.me, name, e.incarnation, e.life))
                for name in names if (e := self.view.get(name)) is not None]

    def on_notice(self, notice: Notice, now: float) -> tuple[Learned, list[Send]]:
        """Take in one authenticated notice (its sender checked against its address, as heartbeats are)."""
        if notice.subject not in self.ring.index or notice.sender not in self.ring.index:
            return Learned.UNKNOWN, []
        if notice.say is Say.SUSPECT:
            return Learned.NOTED, self._suspected_by(notice, now)
        if notice.say is Say.HEARD:
            self.heard_by.setdefault(notice.subject, {})[notice.sender] = now
            self.agreed.get(notice.subject, {}).pop(notice.sender, None)
            return Learned.NOTED, []
        if notice.say is Say.SYNC:
            return Learned.NOTED, self._answer(notice.sender, notice.life, now)
        return self._learn(notice, now)

    def _suspected_by(self, notice: Notice, now: float) -> list[Send]:
        subject, watcher = notice.subject, notice.sender
        self.agreed.setdefault(subject, {})[watcher] = now
        self.heard_by.get(subject, {}).pop(watcher, None)
        if subject == self.me:
            return []
        peer = self.membership.peers.get(subject)
        if peer is not None and peer.state in _HEARING and peer.last_heard is not None \
                and now - peer.last_heard <= self.timeout:
            return [Send(watcher, Notice(Say.HEARD, self.me, subject))]
        return self._press(subject, now) if subject in self.suspects else []

    def _press(self, subject: str, now: float) -> list[Send]:
        """Decide SUBJECT's death if its watchers agree enough; else (at most once an interval) ask them."""
        if self.down(subject):
            self.suspects.pop(subject, None)
            return []
        watchers = self.neighbours(subject) - {self.me}
        fresh = {w for w, at in self.agreed.get(subject, {}).items() if w in watchers and now - at <= self.timeout}
        hearing = {w for w, at in self.heard_by.get(subject, {}).items() if w in watchers and now - at <= self.timeout}
        majority = (len(watchers) + 1) // 2 + 1
        held = now - self.suspects[subject]
        lone = held >= LONE_AFTER_TIMEOUTS * self.timeout and not hearing
        if held >= self.hold_timeouts * self.timeout - _ROUNDING and (len(fresh) + 1 >= majority or lone):
            return self._decide(subject, Verdict.DEAD, now)
        if now - self.pressed.get(subject, -self.timeout) < self.timeout / 6:
            return []
        self.pressed[subject] = now
        return [Send(w, Notice(Say.SUSPECT, self.me, subject, self.entry(subject).incarnation,
                               self.entry(subject).life)) for w in sorted(watchers)]

    def _decide(self, subject: str, verdict: Verdict, now: float) -> list[Send]:
        entry = self.entry(subject)
        peer = self.membership.peers.get(subject)
        incarnation = entry.incarnation or (peer.incarnation if peer is not None and peer.incarnation > 0 else 0)
        return self._announce(subject, Entry(verdict, incarnation, entry.life), now)

    def _announce(self, subject: str, entry: Entry, now: float) -> list[Send]:
        self._set(subject, entry, now)
        return [Send(None, Notice(_SAY_OF[entry.verdict], self.me, subject, entry.incarnation, entry.life))]

    def _learn(self, notice: Notice, now: float) -> tuple[Learned, list[Send]]:
        """A DEAD, LEFT or ALIVE notice: applied if newer than the view's entry."""
        old, subject = self.entry(notice.subject), notice.subject
        if self.strangers.is_retired(subject, notice.incarnation):  # a recording from before a restart of it
            return Learned.OTHER_RUN, []
        new = Entry(_VERDICT_OF[notice.say], notice.incarnation or old.incarnation, notice.life)
        if old.incarnation and notice.incarnation and notice.incarnation != old.incarnation:
            if subject == self.me and new.verdict is not Verdict.ALIVE:
                # A death of an earlier run of ours: the sender never took our word that this run is alive
                # (lost, or refused before it heard us), so it is said again, to every node.
                mine = Entry(Verdict.ALIVE, self.incarnation, max(old.life, new.life + 1))
                return Learned.REFUTED, self._announce(self.me, mine, now)
            if not (notice.say is Say.ALIVE and notice.sender == subject):  # only a node names its new run
                return Learned.OTHER_RUN, []
        elif _order(new) <= _order(old):
            return Learned.STALE, []
        if subject == self.me:
            if new.verdict is Verdict.ALIVE:
                return self._alive_again(new, now)
            mine = Entry(Verdict.ALIVE, self.incarnation, new.life + 1)
            return Learned.REFUTED, self._announce(self.me, mine, now)
        self._set(subject, new, now)
        return Learned.APPLIED, []

    def _alive_again(self, told: Entry, now: float) -> tuple[Learned, list[Send]]:
        """We are told we are alive at a life newer than our own entry: a watcher heard us after a death we
        never learned of (its announcement may not name our run). Our entry takes that life with our run, and
        every node is told, so that every view ends with the same entry (ours would differ from all for good)."""
        if told.incarnation not in (0, self.incarnation):
            return Learned.OTHER_RUN, []
        return Learned.APPLIED, self._announce(self.me, Entry(Verdict.ALIVE, self.incarnation, told.life), now)

    def _set(self, subject: str, entry: Entry, now: float) -> None:
        old = self.entry(subject)
        self.changed_at.pop(subject, None)
        self.changed_at[subject] = now  # the latest last: a repair answer reads them from the end
        self.strangers.run_changed(subject, old.incarnation, entry.incarnation)
        if old != _DEFAULT:
            self.digest ^= entry_hash(subject, old)
        if entry != _DEFAULT:
            self.digest ^= entry_hash(subject, entry)
            self.view[subject] = entry
        else:
            self.view.pop(subject, None)
        if (old.verdict is Verdict.ALIVE) != (entry.verdict is Verdict.ALIVE):
            self.version += 1
            self.suspects.pop(subject, None)
            self.agreed.pop(subject, None)
            self.heard_by.pop(subject, None)
            self._rewatch(now)  # the ring moved around the subject
            if self.on_verdict is not None:
                self.on_verdict(subject, entry.verdict, now)
