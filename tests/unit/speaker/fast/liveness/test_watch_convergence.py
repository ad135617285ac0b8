"""Views converge: the same notices in any order leave the same view, and a suspicion ends where the watch does.

Each row of ORDERS is a set of notices about one subject that nodes may hear in either order (a watcher's and the
subject's own, sent at once to every node); two nodes hearing them in the two orders must end with the same entry
and the same digest, or their digests differ for good and every repair between them finds nothing newer.
"""

from __future__ import annotations

import pytest

from ironlb.speaker.fast.liveness.membership import Membership
from ironlb.speaker.fast.liveness.protocol import Heartbeat, Kind
from ironlb.speaker.fast.liveness.ring import Ring
from ironlb.speaker.fast.liveness.watch import Entry, Learned, Notice, Say, Verdict, Watch

TIMEOUT = 0.15
NAMES = [f"n{i:02d}" for i in range(12)]
RING = Ring(NAMES)
ME = "n00"
SUBJECT = sorted(set(NAMES) - RING.neighbours(ME) - {ME})[0]
WATCHER = sorted(RING.neighbours(SUBJECT) - {ME})[0]
RUN = 77

ORDERS: dict[str, tuple[Notice, Notice]] = {
    "declared dead before it was ever heard: its watcher's ALIVE names no run, its own refutation does": (
        Notice(Say.ALIVE, WATCHER, SUBJECT, 0, 1), Notice(Say.ALIVE, SUBJECT, SUBJECT, RUN, 1)),
    "a goodbye and a death at the same life": (
        Notice(Say.DEAD, WATCHER, SUBJECT, RUN, 2), Notice(Say.LEFT, WATCHER, SUBJECT, RUN, 2)),
    "a death with the run unknown and one naming it, at the same life": (
        Notice(Say.DEAD, WATCHER, SUBJECT, 0, 0), Notice(Say.DEAD, WATCHER, SUBJECT, RUN, 0)),
}


def watch(me: str = ME) -> Watch:
    """ME's watch over the speaker's table of every peer (as ring mode runs it), started at t=0."""
    table = Membership(me=me, started=0.0, timeout=TIMEOUT, incarnation=5)
    table.set_expected(set(NAMES))
    w = Watch(me, 5, RING, table, timeout=TIMEOUT, owns_table=False)
    w.start(0.0)
    return w


@pytest.mark.parametrize("name", ORDERS)
def test_the_same_notices_in_either_order_leave_the_same_view(name: str) -> None:
    first, second = ORDERS[name]
    one, other = watch(), watch()
    for notice in (first, second):
        one.on_notice(notice, 1.0)
    for notice in (second, first):
        other.on_notice(notice, 1.0)
    assert one.entry(SUBJECT) == other.entry(SUBJECT), name
    assert one.digest == other.digest


def test_a_watcher_that_hears_a_node_declared_dead_before_it_was_heard_announces_it_with_its_run() -> None:
    w = watch()
    neighbour = sorted(RING.neighbours(ME))[0]
    w.on_notice(Notice(Say.DEAD, WATCHER, neighbour, 0, 0), 1.0)
    _, change = w.membership.on_message(Heartbeat(Kind.ALIVE, neighbour, RUN, 1, echo=5), 1.1)
    sends = w.heard(neighbour, change, 1.1)
    assert [s.notice for s in sends] == [Notice(Say.ALIVE, ME, neighbour, RUN, 1)]


def test_a_node_told_it_is_alive_again_after_a_death_it_never_learned_of_takes_that_life_with_its_run() -> None:
    """Its watcher announced it alive again (naming no run: it never heard it before the death); it missed the
    DEAD notice. Its own view must end with the entry every other view has, or its digest differs from all."""
    subject, other = watch(SUBJECT), watch()
    alive_again = Notice(Say.ALIVE, WATCHER, SUBJECT, 0, 1)
    other.on_notice(Notice(Say.DEAD, WATCHER, SUBJECT, 0, 0), 1.0)
    other.on_notice(alive_again, 1.1)
    learned, sends = subject.on_notice(alive_again, 1.1)
    assert learned is Learned.APPLIED
    assert [s.notice for s in sends if s.to is None] == [Notice(Say.ALIVE, SUBJECT, SUBJECT, 5, 1)]
    for send in sends:
        other.on_notice(send.notice, 1.2)
    assert subject.entry(SUBJECT) == other.entry(SUBJECT) == Entry(Verdict.ALIVE, 5, 1)
    assert subject.on_notice(alive_again, 1.3)[1] == []  # said once


def test_a_suspicion_ends_when_the_ring_moves_off_its_subject() -> None:
    """A neighbour declared dead refutes: the ring moves back onto it and off the node it had put in its place,
    which we suspected. That one is no longer ours to watch (its heartbeats reach us at probe rate only): we
    neither keep pressing its watchers nor decide its death alone."""
    w = watch()
    between = sorted(RING.neighbours(ME))[0]
    w.on_notice(Notice(Say.DEAD, WATCHER, between, 3, 0), 0.0)  # down in our view: the ring skips it
    subject = next(iter(w.neighbour_set - RING.neighbours(ME)))
    w.tick(2.5)  # every neighbour never heard past the grace period: all suspected
    assert subject in w.suspects
    w.on_notice(Notice(Say.ALIVE, between, between, 3, 1), 2.51)  # it refutes: the ring moves back onto it
    assert subject not in w.neighbour_set and subject not in w.suspects
    sends = [*w.tick(2.6), *w.tick(2.5 + 4 * TIMEOUT)]
    assert not [s for s in sends if s.notice.subject == subject]
    assert w.entry(subject).verdict is Verdict.ALIVE
