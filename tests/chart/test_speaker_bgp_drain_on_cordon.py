"""The chart's switch for BGP mode's cordon trigger: on by default, off it reaches the speaker's container."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.test_chart_template import env, find
from tests.chart.test_speaker_values import refused, render_json

ON = "speaker.bgp.enabled=true"


def test_on_by_default_and_off_when_asked(helm: Path) -> None:
    assert env(find(render_json(helm, ON), "DaemonSet", "-speaker"))["IRONLB_BGP_DRAIN_ON_CORDON"] == "true"
    off = render_json(helm, ON, "speaker.bgp.drainOnCordon=false")
    assert env(find(off, "DaemonSet", "-speaker"))["IRONLB_BGP_DRAIN_ON_CORDON"] == "false"


def test_the_speaker_reads_what_the_chart_sets(helm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ironlb.speaker.main import parse_args

    off = env(find(render_json(helm, ON, "speaker.bgp.drainOnCordon=false"), "DaemonSet", "-speaker"))
    monkeypatch.setenv("IRONLB_BGP_DRAIN_ON_CORDON", off["IRONLB_BGP_DRAIN_ON_CORDON"])
    assert parse_args(["--node", "n1"]).bgp_drain_on_cordon == "false"


def test_a_value_that_is_not_a_boolean_is_refused(helm: Path) -> None:
    assert refused(helm, ON, 'speaker.bgp.drainOnCordon="sometimes"')
