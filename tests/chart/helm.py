"""Where the chart tests find helm: never the lab, never a build, only a binary that already exists."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "ironlb"


@dataclass(frozen=True)
class Found:
    """The helm to use, or why there is none (the skip reason)."""

    path: Path | None
    reason: str


def tools_cache(env: Mapping[str, str]) -> Path:
    """The cache tools/build.sh fills (its cache_root rule)."""
    if env.get("IRONLB_TOOLS_CACHE"):
        return Path(env["IRONLB_TOOLS_CACHE"])
    return Path(env.get("XDG_CACHE_HOME") or Path(env.get("HOME", "~")).expanduser() / ".cache") / "ironlb" / "tools"


def _runnable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_helm(env: Mapping[str, str] | None = None) -> Found:
    """IRONLB_TOOLS_BIN alone when set (as the lab reads it); else PATH; else the newest cached build."""
    env = os.environ if env is None else env
    override = env.get("IRONLB_TOOLS_BIN")
    if override:
        helm = Path(override) / "helm"
        if _runnable(helm):
            return Found(helm, f"IRONLB_TOOLS_BIN: {helm}")
        return Found(None, f"helm absent: IRONLB_TOOLS_BIN={override} holds no executable helm")
    on_path = shutil.which("helm", path=env.get("PATH", ""))
    if on_path:
        return Found(Path(on_path), f"PATH: {on_path}")
    cache = tools_cache(env)
    # Several keys may be cached (one per pinned tool set); the newest is the last one built.
    cached = sorted((p for p in cache.glob("*/bin/helm") if _runnable(p)), key=lambda p: p.stat().st_mtime)
    if cached:
        return Found(cached[-1], f"tools cache: {cached[-1]}")
    return Found(None, f"helm absent: not on PATH nor in {cache}/*/bin (`make tools` builds it; "
                       "IRONLB_TOOLS_BIN points at a directory holding one)")
