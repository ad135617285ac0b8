"""The picture of benchmarks.compare: one panel per figure, IronLB and MetalLB bars with the ratio
written on them, and failover as the distribution of its trials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLOURS = {"ironlb": "#1f77b4", "metallb": "#ff7f0e"}
PANELS = [("assign_p50_ms", "assign p50 (ms)"), ("assign_p99_ms", "assign p99 (ms)"),
          ("burst_per_s", "burst (Services/s)"), ("api_write_ceiling_per_s", "API write ceiling (/s)"),
          ("speaker_rss_mb", "speaker RSS (MB)"), ("speaker_idle_cpu_pct", "speaker idle CPU (%)"),
          ("arp_p50_ms", "ARP p50 at 1k/s (ms)"), ("arp_p99_ms", "ARP p99 at 1k/s (ms)"),
          ("api_writes_per_min_idle", "API writes/min, idle")]


def _ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "ratio n/a"
    return f"ratio {ratio:g}: IronLB {'ahead' if ratio >= 1 else 'behind'}"


def plot(result: dict[str, Any], path: Path) -> None:
    """Draw RESULT (benchmarks.compare's figures) into PATH."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 3, figsize=(13, 13))
    cells = list(axes.flat)
    _failover(cells[0], result)
    cells[1].axis("off")
    ironlb, metallb = result.get("burst_of_ceiling_ironlb"), result.get("burst_of_ceiling_metallb")
    _bars(cells[2], "burst ÷ API write ceiling, same run", [ironlb or 0, metallb or 0],
          round(ironlb / metallb, 2) if ironlb and metallb else None)
    cells[1].text(0, 0.6, f"IronLB vs MetalLB {result.get('metallb_version', '?')}\nsame lab, same run\n"
                          "ratio > 1: IronLB ahead", fontsize=13, va="center")
    for ax, (key, title) in zip(cells[3:], PANELS, strict=True):
        _bars(ax, title, [result.get(f"{key}_{n}") or 0 for n in COLOURS], result.get(f"{key}_ratio"))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _bars(ax, title: str, values: list[float], ratio: float | None) -> None:
    """Two bars, their values on top and the ratio in a box above them."""
    bars = ax.bar(["IronLB", "MetalLB"], values, color=list(COLOURS.values()))
    for bar, v in zip(bars, values, strict=True):
        ax.annotate(f"{v:.3g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=9)
    ax.set_title(title)
    ax.text(0.5, 0.93, _ratio_text(ratio), transform=ax.transAxes, ha="center", va="top", fontsize=10,
            fontweight="bold", bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "grey"})
    ax.set_ylim(0, max([*values, 1e-9]) * 1.3)


def _failover(ax, result: dict[str, Any]) -> None:
    """Failover trials of each implementation as points over a box (seconds, log scale)."""
    data = [[t for t in result.get(f"failover_trials_s_{n}", []) if t is not None] for n in COLOURS]
    ax.boxplot([d or [0] for d in data], tick_labels=["IronLB", "MetalLB"], showfliers=False)
    for i, (d, colour) in enumerate(zip(data, COLOURS.values(), strict=True), 1):
        ax.scatter([i + (k % 5 - 2) * 0.04 for k in range(len(d))], d, color=colour, zorder=3, s=18)
    if all(data) and min(min(d) for d in data) > 0:
        ax.set_yscale("log")
    ax.set_title("failover: kill → traffic back (s)")
    ax.text(0.5, 0.5, f"p50 {_ratio_text(result.get('failover_p50_s_ratio'))}", transform=ax.transAxes,
            ha="center", va="center", fontsize=10, fontweight="bold",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "grey"})
