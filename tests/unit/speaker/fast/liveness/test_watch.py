"""The watch's rules one at a time: which notices are applied, and when watchers decide."""

from __future__ import annotations

from ironlb.speaker.fast.liveness.membership import Membership
from ironlb.speaker.fast.liveness.protocol import Heartbeat, Kind
from ironlb.speaker.fast.liveness.ring import Ring
from ironlb.speaker.fast.liveness.watch import HOLD_TIMEOUTS, Learned, Notice, Say, Send, Verdict, Watch

NAMES = [f"n{i:02d}" for i in range(12)]
RING = Ring(NAMES)


def watch(me: str = "n00") -> Watch:
    """ME's watch, started at t=0."""
    w = Watch(me, 5, RING, Membership(me=me, started=0.0, timeout=0.15, incarnation=5), timeout=0.15)
    w.start(0.0)
    return w


def test_its_membership_holds_exactly_its_ring_neighbours() -> None:
    w = watch()
    assert set(w.membership.peers) == RING.neighbours("n00") and len(w.membership.peers) == 4


def test_a_death_over_a_life_at_the_same_life_and_a_life_only_at_a_higher_one() -> None:
    w, other = watch(), sorted(set(NAMES) - RING.neighbours("n00") - {"n00"})[0]
    assert w.on_notice(Notice(Say.DEAD, "n05", other, 9, 0), 1.0)[0] is Learned.APPLIED
    assert w.on_notice(Notice(Say.ALIVE, "n05", other, 9, 0), 1.0)[0] is Learned.STALE
    assert w.on_notice(Notice(Say.DEAD, "n05", other, 9, 0), 1.0)[0] is Learned.STALE
    assert w.on_notice(Notice(Say.ALIVE, other, other, 9, 1), 1.0)[0] is Learned.APPLIED
    assert w.entry(other).verdict is Verdict.ALIVE and other in w.alive()


def test_only_the_node_itself_names_a_new_run_of_its_own() -> None:
    w = watch()
    w.on_notice(Notice(Say.DEAD, "n05", "n07", 9, 0), 1.0)
    assert w.on_notice(Notice(Say.ALIVE, "n05", "n07", 10, 3), 1.0)[0] is Learned.OTHER_RUN
    assert w.on_notice(Notice(Say.ALIVE, "n07", "n07", 10, 0), 1.0)[0] is Learned.APPLIED
    assert w.entry("n07").incarnation == 10


def test_notices_naming_nodes_outside_the_node_list_are_refused() -> None:
    w = watch()
    assert w.on_notice(Notice(Say.DEAD, "n05", "stranger", 1, 0), 1.0)[0] is Learned.UNKNOWN
    assert w.on_notice(Notice(Say.DEAD, "stranger", "n05", 1, 0), 1.0)[0] is Learned.UNKNOWN


def test_told_it_is_dead_a_node_refutes_at_the_next_life_to_every_node() -> None:
    w = watch()
    learned, sends = w.on_notice(Notice(Say.DEAD, "n05", "n00", 5, 3), 1.0)
    assert learned is Learned.REFUTED and sends == [Send(None, Notice(Say.ALIVE, "n00", "n00", 5, 4))]


def test_a_watcher_decides_with_a_majority_of_the_subjects_watchers_and_not_before() -> None:
    w = watch()
    subject = sorted(w.membership.peers)[0]
    others = sorted(RING.neighbours(subject) - {"n00"})
    w.tick(2.5)  # every neighbour never heard past the grace period: all suspected
    assert w.suspects.keys() == set(w.membership.peers)
    _, sends = w.on_notice(Notice(Say.SUSPECT, others[0], subject), 2.5)
    assert w.entry(subject).verdict is Verdict.ALIVE and sends == []  # two of four: not a majority
    _, sends = w.on_notice(Notice(Say.SUSPECT, others[1], subject), 2.51)
    assert w.entry(subject).verdict is Verdict.ALIVE  # a majority, but the suspicion is not held long enough yet
    sends = w.tick(2.5 + HOLD_TIMEOUTS * 0.15)
    assert w.entry(subject).verdict is Verdict.DEAD
    assert [s for s in sends if s.to is None] == [Send(None, Notice(Say.DEAD, "n00", subject, 0, 0))]


def test_a_subject_heard_while_its_suspicion_is_held_lives() -> None:
    w = watch()
    subject = sorted(w.membership.peers)[0]
    others = sorted(RING.neighbours(subject) - {"n00"})
    w.tick(2.5)
    for other in others:
        w.on_notice(Notice(Say.SUSPECT, other, subject), 2.5)
    # Its loop stalled past the timeout, and it speaks again.
    _, change = w.membership.on_message(Heartbeat(Kind.ALIVE, subject, 9, 1, echo=5), 2.55)
    w.heard(subject, change, 2.55)
    w.tick(2.5 + 2 * HOLD_TIMEOUTS * 0.15)
    assert w.entry(subject).verdict is Verdict.ALIVE and subject not in w.suspects


def test_a_watcher_that_still_hears_the_subject_answers_a_suspect() -> None:
    w = watch()
    subject = sorted(w.membership.peers)[0]
    w.membership.peers[subject].last_heard = 1.0
    _, sends = w.on_notice(Notice(Say.SUSPECT, "n09", subject), 1.05)
    assert sends == [Send("n09", Notice(Say.HEARD, "n00", subject))]


def test_a_recording_of_a_nodes_alive_from_a_run_it_replaced_is_refused() -> None:
    w = watch()
    assert w.on_notice(Notice(Say.ALIVE, "n07", "n07", 9, 1), 1.0)[0] is Learned.APPLIED
    assert w.on_notice(Notice(Say.ALIVE, "n07", "n07", 10, 0), 2.0)[0] is Learned.APPLIED  # it restarted
    w.on_notice(Notice(Say.DEAD, "n05", "n07", 10, 0), 3.0)
    # Replayed by someone holding the key's traffic: its run 9 at a higher life than any of run 10's.
    assert w.on_notice(Notice(Say.ALIVE, "n07", "n07", 9, 5), 4.0)[0] is Learned.OTHER_RUN
    assert w.entry("n07").verdict is Verdict.DEAD and w.entry("n07").incarnation == 10
