"""Figures for every benchmark: percentiles and the final JSON line. Standard library only, so a benchmark that
measures a process's memory (speaker_scale's speaker role, speaker_memory) does not import the lab or its client."""

from __future__ import annotations

import json
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def report(figures: dict[str, Any]) -> None:
    """Print the final JSON line of figures."""
    print(json.dumps(figures, sort_keys=True))
