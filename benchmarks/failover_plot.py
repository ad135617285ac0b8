"""The node-death timeline of `benchmarks.failover --kubelet` and `benchmarks.compare --kubelet`: one row per run
(its first trial), new connections answered and failed in each second around the kill, the VIP's move and the
all-connections-ok time marked; above the bars a tick for each failed one.

`python -m benchmarks.failover_plot RUN.json [RUN.json ...] -o PATH`: RUN.json as `benchmarks.failover --kubelet
--save` or `benchmarks.compare --kubelet --save-dir` writes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BEFORE_S = 2.0  # the timeline starts this long before the kill
AFTER_S = 60.0
ANSWERED, FAILED = "#2ca02c", "#d62728"


def label(run: dict[str, Any]) -> str:
    """A run's mode as a panel's title: the load balancer, IronLB's steering, and the policy."""
    if run.get("balancer") == "metallb":
        return f"MetalLB {run.get('metallb_version', '')}".strip() + f" ({run['policy']})"
    steering = run.get("steering")
    mode = f", steering {'on' if steering else 'off'}" if steering is not None else ""
    return f"IronLB{mode} ({run['policy']})"


def per_second(starts: list[float]) -> list[int]:
    """How many of STARTS (seconds from the kill) fall in each second of the timeline."""
    counts = [0] * int(BEFORE_S + AFTER_S)
    for t in starts:
        if -BEFORE_S <= t < AFTER_S:
            counts[int(t + BEFORE_S)] += 1
    return counts


def panel(ax: Any, run: dict[str, Any]) -> None:
    """Draw RUN's first trial into AX."""
    trial = run["trials"][0]
    timeline = trial["timeline"]
    seconds = [s - BEFORE_S for s in range(int(BEFORE_S + AFTER_S))]
    answered, failed = per_second(timeline["answered"]), per_second(timeline["failed"])
    ax.bar(seconds, answered, width=1.0, align="edge", color=ANSWERED, label="answered")
    ax.bar(seconds, failed, width=1.0, align="edge", bottom=answered, color=FAILED, label="failed")
    # Each failed one as a tick above the bars: a few failures in one second are too thin a bar to see.
    ax.vlines([t for t in timeline["failed"] if t < AFTER_S], 53, 59, color=FAILED, linewidth=0.6)
    ax.axvline(0, color="black", linewidth=1)
    ax.annotate("kill", (0, 1.0), xycoords=("data", "axes fraction"), ha="right", va="bottom", fontsize=8)
    moved, all_ok = trial.get("vip_moved_s"), trial["all_connections_ok_s"]
    if moved is not None:
        ax.axvline(moved, color="#1f77b4", linestyle="--", linewidth=1, label=f"VIP moved {moved:.2f} s")
    ax.axvline(all_ok, color="#9467bd", linestyle=":", linewidth=1.5, label=f"all connections ok {all_ok:.2f} s")
    ax.set_xlim(-BEFORE_S, AFTER_S)
    ax.set_ylim(0, 60)
    ax.set_title(f"{label(run)}: {trial['failed_connections']} of {trial['attempts']} failed")
    # Beside the axes: inside, it hides the seconds where connections still fail.
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    """Draw RUNS (as `benchmarks.failover --kubelet --save` writes them) one row each into PATH."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 1, figsize=(13, 3 * len(runs)), sharex=True, squeeze=False)
    for row, run in zip(axes, runs, strict=True):
        panel(row[0], run)
        row[0].set_ylabel("new connections / s")
    axes[-1][0].set_xlabel("seconds since the kill")
    fig.suptitle("New connections around the announcing node's kill (real nodes, 50 per second)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> int:
    """Combine saved runs into one picture."""
    p = argparse.ArgumentParser(prog="benchmarks.failover_plot")
    p.add_argument("runs", nargs="+", type=Path, help="JSON files of `benchmarks.failover --kubelet --save`")
    p.add_argument("-o", "--output", type=Path, required=True, help="the PNG to write")
    args = p.parse_args()
    plot([json.loads(path.read_text()) for path in args.runs], args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
