"""The node-death timeline of benchmarks.failover --kubelet: what --save keeps of each trial and the picture."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import failover_plot
from benchmarks._failover_kubelet import timeline
from e2e.testkit.connections import parse

KILL = 100.0


def new(start: float, failure: str | None = None) -> str:
    """A `new` event line as connprobe writes it."""
    return json.dumps({"kind": "new", "start": start, "end": start + 0.01, "pod": None if failure else "web-a",
                       "failure": failure})


def test_timeline_keeps_starts_from_the_kill_answered_and_failed_apart() -> None:
    rec = parse([new(97.0), new(98.5), new(100.2, "timeout"), new(100.4), new(159.0, "timeout"), new(161.0)])
    assert timeline(rec, KILL, 60.0) == {"answered": [-1.5, 0.4], "failed": [0.2, 59.0]}


def test_per_second_bins_from_before_the_kill() -> None:
    counts = failover_plot.per_second([-2.0, -0.1, 0.0, 0.99, 59.5, 60.0])
    assert len(counts) == 62
    assert (counts[0], counts[1], counts[2], counts[61]) == (1, 1, 2, 1)
    assert sum(counts) == 5  # 60.0 is past the timeline


def saved(policy: str, steering: bool, failed: list[float]) -> dict:
    """A run as `--save` writes it, with one trial."""
    trial = {"vip_moved_s": 0.2, "all_connections_ok_s": max(failed, default=0.0), "failed_connections": len(failed),
             "attempts": 3000, "timeline": {"answered": [i / 50 - 2 for i in range(3100)], "failed": failed}}
    return {"policy": policy, "steering": steering, "trials": [trial]}


def test_runs_combine_into_one_picture(tmp_path: Path) -> None:
    runs = [tmp_path / "off.json", tmp_path / "on.json"]
    runs[0].write_text(json.dumps(saved("Cluster", False, [0.1, 5.0, 40.0])))
    runs[1].write_text(json.dumps(saved("Cluster", True, [0.1])))
    out = tmp_path / "death.png"
    failover_plot.plot([json.loads(p.read_text()) for p in runs], out)
    assert out.read_bytes().startswith(b"\x89PNG")
    assert failover_plot.label(json.loads(runs[0].read_text())) == "IronLB, steering off (Cluster)"
