"""Figures for every benchmark: percentiles and the final JSON line. Standard library only, so a benchmark that
measures a process's memory (speaker_scale's speaker role, speaker_memory) does not import the lab or its client."""

from __future__ import annotations

import json
import math
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def report(figures: dict[str, Any]) -> None:
    """Print the final JSON line of figures."""
    print(json.dumps(figures, sort_keys=True))


def oriented_ratio(higher_is_better: bool, ironlb: float | None, other: float | None) -> float | None:
    """IronLB's figure against another implementation's, oriented so that > 1 means IronLB is ahead: ironlb ÷
    other for a rate (HIGHER_IS_BETTER), other ÷ ironlb for a time or a cost; None when undefined (a side
    missing, infinite, or nothing to divide by)."""
    if ironlb is None or other is None:
        return None
    num, den = (ironlb, other) if higher_is_better else (other, ironlb)
    if den == 0 or math.isinf(num) or math.isinf(den):
        return None
    return round(num / den, 2)
