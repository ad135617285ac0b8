"""The chart tests find an existing helm or skip saying why; they never load the lab or build anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chart.helm import REPO, find_helm, tools_cache
from tests.chart.promtool import find_promtool

# Each case lays out helm binaries ("dir": executable, "dir!": not executable) and sets the environment;
# "{tmp}" stands for the case's directory. Expected: the helm found (relative to tmp) or None, and the
# words the reason must hold.
CASES = {
    "IRONLB_TOOLS_BIN wins over PATH and the cache": (
        ["bin", "path", "cache/k1/bin"],
        {"IRONLB_TOOLS_BIN": "{tmp}/bin", "PATH": "{tmp}/path", "IRONLB_TOOLS_CACHE": "{tmp}/cache"},
        "bin/helm", ["IRONLB_TOOLS_BIN"]),
    "IRONLB_TOOLS_BIN pointing nowhere hides every other helm": (
        ["path", "cache/k1/bin"],
        {"IRONLB_TOOLS_BIN": "{tmp}/nowhere", "PATH": "{tmp}/path", "IRONLB_TOOLS_CACHE": "{tmp}/cache"},
        None, ["helm absent", "IRONLB_TOOLS_BIN={tmp}/nowhere"]),
    "PATH before the cache": (
        ["path", "cache/k1/bin"],
        {"PATH": "{tmp}/empty:{tmp}/path", "IRONLB_TOOLS_CACHE": "{tmp}/cache"},
        "path/helm", ["PATH"]),
    "the newest of several cached builds": (
        ["cache/old/bin", "cache/new/bin"], {"PATH": "", "IRONLB_TOOLS_CACHE": "{tmp}/cache"},
        "cache/new/bin/helm", ["tools cache"]),
    "a helm that is not executable does not count": (
        ["path!", "cache/k1/bin!"], {"PATH": "{tmp}/path", "IRONLB_TOOLS_CACHE": "{tmp}/cache"},
        None, ["helm absent", "not on PATH", "{tmp}/cache/*/bin", "make tools"]),
    "the cache follows XDG_CACHE_HOME as tools/build.sh does": (
        ["xdg/ironlb/tools/k1/bin"], {"PATH": "", "XDG_CACHE_HOME": "{tmp}/xdg", "HOME": "{tmp}/home"},
        "xdg/ironlb/tools/k1/bin/helm", ["tools cache"]),
    "and HOME when nothing else is set": (
        ["home/.cache/ironlb/tools/k1/bin"], {"HOME": "{tmp}/home"},
        "home/.cache/ironlb/tools/k1/bin/helm", ["tools cache"]),
    "nothing anywhere": (
        [], {"PATH": "{tmp}/path", "HOME": "{tmp}/home"},
        None, ["helm absent", "{tmp}/home/.cache/ironlb/tools/*/bin"]),
}


def lay_out(tmp: Path, dirs: list[str]) -> None:
    """Create a helm in each directory, in order, each one newer than the last."""
    for i, spec in enumerate(dirs):
        where = tmp / spec.rstrip("!")
        where.mkdir(parents=True)
        helm = where / "helm"
        helm.write_text("#!/bin/sh\n")
        helm.chmod(0o644 if spec.endswith("!") else 0o755)
        os.utime(helm, (1_000_000 + i, 1_000_000 + i))


@pytest.mark.parametrize("name", list(CASES))
def test_find_helm(name: str, tmp_path: Path) -> None:
    dirs, env, expected, words = CASES[name]
    lay_out(tmp_path, dirs)
    found = find_helm({k: v.format(tmp=tmp_path) for k, v in env.items()})
    assert found.path == (None if expected is None else tmp_path / expected), found
    for word in words:
        assert word.format(tmp=tmp_path) in found.reason, found.reason


def test_the_cache_rule_matches_tools_build_sh() -> None:
    """tools/build.sh's cache_root line is the rule tools_cache() implements."""
    line = next(x for x in (REPO / "tools" / "build.sh").read_text().splitlines() if x.startswith("cache_root="))
    assert line == 'cache_root="${IRONLB_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ironlb/tools}"'
    assert tools_cache({"HOME": "/h"}) == Path("/h/.cache/ironlb/tools")


# Run in a fresh interpreter: it reports which e2e modules the chart run loaded, after pytest ends.
PROBE = """
import json, sys, pytest
rc = pytest.main(sys.argv[1:])
print(json.dumps({"rc": int(rc), "e2e": sorted(m for m in sys.modules if m.split(".")[0] == "e2e")}))
"""


def test_without_helm_the_chart_tests_skip_and_load_no_lab(tmp_path: Path) -> None:
    """No helm anywhere and no PATH (so no bash for a build): helm tests skip with the reason, others pass."""
    env = {"HOME": str(tmp_path), "IRONLB_TOOLS_CACHE": str(tmp_path / "cache"), "PATH": ""}
    args = [sys.executable, "-c", PROBE, "tests/chart", "-q", "-rs", "-p", "no:cacheprovider", "-k", "not load_no_lab"]
    res = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report == {"rc": 0, "e2e": []}, res.stdout + res.stderr
    assert f"helm absent: not on PATH nor in {tmp_path}/cache/*/bin" in res.stdout, res.stdout
    assert " skipped" in res.stdout and " passed" in res.stdout and "error" not in res.stdout, res.stdout


def test_promtool_is_the_newest_cached_build_or_the_one_named(tmp_path: Path) -> None:
    for key in ("promtool-old", "promtool-new", "k1"):
        (tmp_path / key / "bin").mkdir(parents=True)
        tool = tmp_path / key / "bin" / "promtool"
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
        os.utime(tool, (1, 2 if key == "promtool-new" else 1))
    env = {"IRONLB_TOOLS_CACHE": str(tmp_path), "PATH": str(tmp_path / "k1" / "bin")}
    assert find_promtool(env).path == tmp_path / "promtool-new" / "bin" / "promtool"  # not PATH's, not k1's
    named = find_promtool({**env, "IRONLB_PROMTOOL": str(tmp_path / "k1" / "bin" / "promtool")})
    assert named.path == tmp_path / "k1" / "bin" / "promtool"
    absent = find_promtool({"IRONLB_TOOLS_CACHE": str(tmp_path / "none")})
    assert absent.path is None and "make tools" in absent.reason
