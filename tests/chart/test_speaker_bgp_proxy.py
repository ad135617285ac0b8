"""The chart's switch for paths announced on other nodes' behalf: off by default, on it reaches the speaker."""

from __future__ import annotations

from pathlib import Path

from tests.chart.test_chart_template import env, find
from tests.chart.test_speaker_values import refused, render_json

ON = "speaker.bgp.enabled=true"


def test_off_by_default_and_on_when_asked(helm: Path) -> None:
    assert env(find(render_json(helm, ON), "DaemonSet", "-speaker"))["IRONLB_BGP_PROXY_NEXT_HOPS"] == "false"
    on = render_json(helm, ON, "speaker.bgp.proxyNextHops=true")
    assert env(find(on, "DaemonSet", "-speaker"))["IRONLB_BGP_PROXY_NEXT_HOPS"] == "true"


def test_a_value_that_is_not_a_boolean_is_refused(helm: Path) -> None:
    assert refused(helm, ON, 'speaker.bgp.proxyNextHops="two"')
