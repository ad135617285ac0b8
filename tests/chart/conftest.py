"""The chart tests' helm and promtool: found where they already are, or every test that needs one skips
saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.helm import Found, find_helm
from tests.chart.promtool import find_promtool


def _found_or_skip(found: Found) -> Path:
    if found.path is None:
        pytest.skip(found.reason)
    return found.path


@pytest.fixture(scope="session")
def helm() -> Path:
    """An existing helm binary (tests/chart/helm.py says where it looks); skips the test when there is none."""
    return _found_or_skip(find_helm())


@pytest.fixture(scope="session")
def promtool() -> Path:
    """The pinned promtool (tests/chart/promtool.py says where it looks); skips the test when there is none."""
    return _found_or_skip(find_promtool())
