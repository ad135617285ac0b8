"""Messages from non-neighbours: taken only from the run the view has for the sender, newest first."""

from __future__ import annotations

from ironlb.speaker.fast.liveness.protocol import Heartbeat, Kind
from ironlb.speaker.fast.liveness.strangers import Strangers, Taken


def msg(run: int, sequence: int, kind: Kind = Kind.FENCED) -> Heartbeat:
    """A message of n7's."""
    return Heartbeat(kind, "n7", run, sequence, 0)


def test_nothing_is_taken_before_the_view_names_a_run() -> None:
    assert Strangers().take(msg(9, 1), view_run=0) is Taken.NO_RUN


def test_the_views_run_is_taken_newest_first_and_a_recording_of_it_is_not() -> None:
    strangers = Strangers()
    assert strangers.take(msg(9, 5), view_run=9) is Taken.TAKEN
    assert strangers.take(msg(9, 5), view_run=9) is Taken.REPLAYED
    assert strangers.take(msg(9, 3, Kind.ALIVE), view_run=9) is Taken.REPLAYED  # an earlier state of this run
    assert strangers.take(msg(9, 6), view_run=9) is Taken.TAKEN


def test_a_run_the_view_replaced_is_never_taken_again() -> None:
    strangers = Strangers()
    strangers.take(msg(9, 5), view_run=9)
    strangers.run_changed("n7", 9, 10)  # it restarted, and said so
    assert strangers.take(msg(9, 50, Kind.RESTART), view_run=10) is Taken.RETIRED
    assert strangers.take(msg(10, 1), view_run=10) is Taken.TAKEN  # a new run's sequences start afresh


def test_a_run_the_view_does_not_know_yet_waits_for_its_notice() -> None:
    assert Strangers().take(msg(11, 1), view_run=10) is Taken.OTHER_RUN
