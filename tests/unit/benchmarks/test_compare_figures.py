"""benchmarks.compare's figures: every ratio is oriented so that > 1 means IronLB is ahead."""

from __future__ import annotations

import pytest

from benchmarks.compare import FIGURES, ratio


@pytest.mark.parametrize(("figure", "ironlb", "metallb", "expected"), [
    ("failover_p50_s", 0.5, 5.0, 10.0),          # a time: metallb ÷ ironlb
    ("assign_p99_ms", 200.0, 100.0, 0.5),        # IronLB slower: below 1
    ("burst_per_s", 90.0, 30.0, 3.0),            # a rate: ironlb ÷ metallb
    ("api_writes_per_min_idle", 74.0, 1.0, 0.01),  # a cost: metallb ÷ ironlb
    ("api_writes_per_min_idle", 0.0, 1.0, None),   # nothing to divide by: undefined, not infinite
    ("failover_p95_s", float("inf"), 5.0, None),   # a trial that never came back has no ratio
    ("speaker_rss_mb", None, 90.0, None),          # a side missing
])
def test_ratio_orientation(figure: str, ironlb: float | None, metallb: float | None,
                           expected: float | None) -> None:
    assert ratio(figure, ironlb, metallb) == expected


def test_every_figure_the_issue_names_is_reported() -> None:
    assert set(FIGURES) == {"failover_p50_s", "failover_p95_s", "assign_p50_ms", "assign_p99_ms", "burst_per_s",
                            "api_write_ceiling_per_s", "speaker_rss_mb", "speaker_idle_cpu_pct", "arp_p50_ms",
                            "arp_p99_ms", "api_writes_per_min_idle"}
