"""The chart tests' helm: found where it already is, or every test that needs it skips saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.helm import find_helm
from tests.chart.promtool import find_promtool


@pytest.fixture(scope="session")
def helm() -> Path:
    """An existing helm binary (tests/chart/helm.py says where it looks); skips the test when there is none."""
    found = find_helm()
    if found.path is None:
        pytest.skip(found.reason)
    return found.path


@pytest.fixture(scope="session")
def promtool() -> Path:
    """The pinned promtool (tests/chart/promtool.py says where it looks); skips the test when there is none."""
    found = find_promtool()
    if found.path is None:
        pytest.skip(found.reason)
    return found.path
