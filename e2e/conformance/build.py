"""The e2e test binary (`e2e.test`: the framework and test/e2e/network at the lab's Kubernetes pin), built by
tools/e2e/build.sh into a cache outside the repo keyed by its pins."""

from __future__ import annotations

import time
from pathlib import Path

from e2e.lab import e2eimages


def e2e_test_binary() -> tuple[Path, float]:
    """The built (or cached) e2e.test and the seconds it took to build or find it."""
    started = time.monotonic()
    binary = e2eimages.e2e_bin_dir() / "e2e.test"
    return binary, round(time.monotonic() - started, 1)
