"""Where the chart tests find promtool: the build of tools/promtool/build.sh, never a build of their own."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tests.chart.helm import Found, tools_cache


def find_promtool(env: Mapping[str, str] | None = None) -> Found:
    """IRONLB_PROMTOOL when set; else the newest cached build (not PATH: a distribution's may be older
    than the pin, and its `test rules` differs)."""
    env = os.environ if env is None else env
    override = env.get("IRONLB_PROMTOOL")
    if override:
        path = Path(override)
        if path.is_file() and os.access(path, os.X_OK):
            return Found(path, f"IRONLB_PROMTOOL: {path}")
        return Found(None, f"promtool absent: IRONLB_PROMTOOL={override} is no executable")
    cache = tools_cache(env)
    cached = sorted((p for p in cache.glob("promtool-*/bin/promtool") if os.access(p, os.X_OK)),
                    key=lambda p: p.stat().st_mtime)
    if cached:
        return Found(cached[-1], f"tools cache: {cached[-1]}")
    return Found(None, f"promtool absent: not in {cache}/promtool-*/bin (`make tools` builds it; "
                       "IRONLB_PROMTOOL names one)")
