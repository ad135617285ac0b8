"""Runs the view has seen replaced are never taken again."""

from __future__ import annotations

from ironlb.speaker.fast.liveness.membership import RETIRED_KEPT
from ironlb.speaker.fast.liveness.strangers import Strangers


def test_a_run_the_view_replaced_is_retired_and_a_first_run_retires_nothing() -> None:
    strangers = Strangers()
    strangers.run_changed("n7", 0, 9)  # the view learns its first run
    assert not strangers.is_retired("n7", 9) and not strangers.is_retired("n7", 0)
    strangers.run_changed("n7", 9, 10)  # it restarted, and said so
    assert strangers.is_retired("n7", 9) and not strangers.is_retired("n7", 10)
    assert not strangers.is_retired("n8", 9)  # per node


def test_only_the_latest_runs_are_remembered() -> None:
    strangers = Strangers()
    for run in range(1, RETIRED_KEPT + 3):
        strangers.run_changed("n7", run, run + 1)
    assert not strangers.is_retired("n7", 1) and strangers.is_retired("n7", RETIRED_KEPT + 2)
