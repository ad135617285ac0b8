"""Shared pytest fixtures: the lab (real API server, kube-proxy, kernel networking) for lab tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the lab is imported by the tests that use it, so a chart-only run never loads it
    from e2e.testkit.testing import Kube


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Lab tests need root (network namespaces); make that explicit instead of failing obscurely.

    Real-node tests run last: their lab replaces the shared lightweight one."""
    items.sort(key=lambda item: "kubelet" in item.keywords)
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="lab tests create network namespaces: run as root")
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def kube() -> Iterator[Kube]:
    """The running lab (3 nodes, dual-stack); started for the session unless one already runs."""
    from e2e.lab import lab
    from e2e.testkit.testing import ensure_lab

    handle, started = ensure_lab(nodes=3, ipv6=True)
    yield handle
    if started and not os.environ.get("IRONLB_KEEP_LAB"):
        lab.down()
