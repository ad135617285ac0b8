"""benchmarks.compare --kubelet's figures: each side's three, and ratios oriented so that > 1 means IronLB is
ahead."""

from __future__ import annotations

from typing import Any

from benchmarks._compare_kubelet import figures


def summary(moved: float, all_ok: float, failed_mean: float) -> dict[str, Any]:
    """A side's summary as benchmarks._failover_kubelet.summary makes it (the fields compared)."""
    return {"vip_moved_p95_s": moved, "all_connections_ok_p95_s": all_ok,
            "failed_connections_per_kill": {"mean": failed_mean, "max": int(failed_mean) + 1}}


def test_each_side_and_its_ratio_metallb_over_ironlb() -> None:
    out = figures({"ironlb": summary(0.25, 0.5, 20.0), "metallb": summary(5.5, 57.0, 990.0)}, "v0.16.1")
    assert (out["vip_moved_p95_s_ironlb"], out["vip_moved_p95_s_metallb"], out["vip_moved_p95_s_ratio"]) == (
        0.25, 5.5, 22.0)
    assert out["all_connections_ok_p95_s_ratio"] == 114.0
    assert (out["failed_connections_per_kill_ironlb"], out["failed_connections_per_kill_ratio"]) == (20.0, 49.5)
    assert out["metallb_version"] == "v0.16.1"
    assert out["summary_metallb"]["failed_connections_per_kill"]["max"] == 991


def test_ironlb_behind_reads_below_one_and_nothing_to_divide_by_is_no_ratio() -> None:
    out = figures({"ironlb": summary(6.0, 0.0, 0.0), "metallb": summary(3.0, 40.0, 100.0)}, "v0.16.1")
    assert out["vip_moved_p95_s_ratio"] == 0.5
    assert out["all_connections_ok_p95_s_ratio"] is None  # IronLB lost nothing: no finite ratio
    assert out["failed_connections_per_kill_ratio"] is None
