"""The speaker's collector settings: the higher thresholds hold from the start, before the informers list."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ironlb.speaker.control.runtime import GC_THRESHOLDS, collect_less_often


@pytest.fixture
def thresholds() -> Iterator[None]:
    """The test process's own thresholds, put back afterwards."""
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*before)


def test_the_collector_runs_less_often_from_the_start(thresholds: None) -> None:
    gc.set_threshold(700, 10, 10)  # the interpreter's defaults
    collect_less_often()
    assert gc.get_threshold() == GC_THRESHOLDS
