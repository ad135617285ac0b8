"""The repair's bounds, as scenario tables: what a SYNC is answered with, and when a node asks for one.

A node's view holds OLD entries changed long ago and NEW ones changed lately (DEAD notices about far nodes);
its neighbour "w" asks it (SYNC, the ask's number in one mismatch) and the answer's size is checked. On the
asking side, heartbeats of w carrying a different digest are fed at given times and the SYNCs sent are checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ironlb.speaker.fast.liveness.membership import Membership
from ironlb.speaker.fast.liveness.ring import Ring
from ironlb.speaker.fast.liveness.watch import (
    FULL_REPAIR_EVERY_TIMEOUTS,
    RECENT_MAX,
    RECENT_TIMEOUTS,
    REPAIR_AFTER_TIMEOUTS,
    REPAIR_BACKOFF_TIMEOUTS,
    Notice,
    Repair,
    Say,
    Watch,
)

TIMEOUT = 0.15
NAMES = [f"n{i:03d}" for i in range(120)]
RING = Ring(NAMES)
ME = "n000"
ASKER = sorted(RING.neighbours(ME))[0]
FAR = sorted(set(NAMES) - RING.neighbours(ME) - {ME})
LATER = RECENT_TIMEOUTS * TIMEOUT + 1.0  # when the entries changed at 0 are no longer recent


def watch(repair: Repair = Repair.RECENT) -> Watch:
    """ME's watch, started at t=0."""
    w = Watch(ME, 5, RING, Membership(me=ME, started=0.0, timeout=TIMEOUT, incarnation=5), timeout=TIMEOUT,
              repair=repair)
    w.start(0.0)
    return w


def change(w: Watch, count: int, now: float, first: int = 0) -> None:
    """COUNT far nodes (from FIRST on) declared dead at NOW."""
    for name in FAR[first:first + count]:
        w.on_notice(Notice(Say.DEAD, FAR[-1], name, 9, 0), now)


@dataclass(frozen=True)
class Ask:
    """At AT, the asker's ASK-th SYNC in one mismatch is answered with ANSWERED notices."""

    at: float
    ask: int
    answered: int


# (old entries, new entries, the asks in order)
ANSWERS: dict[str, tuple[int, int, list[Ask]]] = {
    "a first ask is answered with the entries changed lately, not the whole view": (
        40, 3, [Ask(LATER, 1, 3)]),
    "the entries changed lately are bounded": (
        0, RECENT_MAX + 10, [Ask(0.1, 1, RECENT_MAX)]),
    "an asker answered just now is not answered again": (
        40, 3, [Ask(LATER, 1, 3), Ask(LATER + 0.01, 1, 0)]),
    "a second ask in one mismatch (far behind) gets the whole view, once a while": (
        40, 3, [Ask(LATER, 1, 3), Ask(LATER + 0.1, 2, 43), Ask(LATER + 0.2, 3, 3),
                Ask(LATER + FULL_REPAIR_EVERY_TIMEOUTS * TIMEOUT + 0.1, 4, 43)]),
    "nothing changed lately: a first ask gets nothing": (
        40, 0, [Ask(LATER, 1, 0)]),
}


@pytest.mark.parametrize("name", ANSWERS)
def test_a_sync_answer(name: str) -> None:
    old, new, asks = ANSWERS[name]
    w = watch()
    change(w, old, 0.0)
    change(w, new, asks[0].at - 0.05, first=old)
    for ask in asks:
        _, sends = w.on_notice(Notice(Say.SYNC, ASKER, ME, life=ask.ask), ask.at)
        assert len(sends) == ask.answered, ask
        assert all(send.to == ASKER and send.notice.say is Say.DEAD for send in sends)


def test_the_whole_view_to_every_ask_as_before_the_bound() -> None:
    w = watch(Repair.WHOLE)
    change(w, 40, 0.0)
    for at in (LATER, LATER + 0.01):
        assert len(w.on_notice(Notice(Say.SYNC, ASKER, ME, life=1), at)[1]) == 40


WAIT = REPAIR_AFTER_TIMEOUTS * TIMEOUT
# The times a differing digest of the asker's is heard, every round for a while, and the asks that go out
# (time, which ask in the mismatch): the first after WAIT, then each wait twice the last, up to the backoff's cap.
ROUNDS = [round(i * 0.025, 3) for i in range(0, 161)]
CAP = REPAIR_BACKOFF_TIMEOUTS * TIMEOUT


def expected_asks() -> list[tuple[float, int]]:
    """When a node asks a neighbour whose digest stays different from t=0, at one heartbeat a round."""
    asks: list[tuple[float, int]] = []
    last = None
    for now in ROUNDS:
        gap = min(WAIT * 2 ** len(asks), CAP)
        if now >= WAIT and (last is None or now - last >= gap):
            asks.append((now, len(asks) + 1))
            last = now
    return asks


def test_asks_to_one_neighbour_back_off_while_the_digests_differ_and_start_afresh_once_they_match() -> None:
    w = watch()
    sent = [(now, s.notice.life) for now in ROUNDS for s in w.on_digest(ASKER, 1234, now)]
    assert sent == expected_asks() and len(sent) < len(ROUNDS) / 10
    assert sent[1][0] - sent[0][0] >= 2 * WAIT - 1e-9 and sent[-1][0] - sent[-2][0] <= CAP + 0.025
    assert w.on_digest(ASKER, w.digest, 4.1) == []  # they match again: the next mismatch starts with ask 1
    assert [s.notice.life for s in w.on_digest(ASKER, 1234, 4.2) + w.on_digest(ASKER, 1234, 4.2 + WAIT)] == [1]
