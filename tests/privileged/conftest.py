"""Tests that need root and the kernel: network namespaces, packet sockets, bpf(2), rtnetlink.

`make test` runs them (as root, as CI does); `make unit` leaves them out (-m "not privileged"). Run without
root, they fail at once rather than skip: a privileged test that quietly never runs could never fail.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _privileged(request: pytest.FixtureRequest) -> None:
    """Every test here carries the marker (so -m "not privileged" leaves it out) and runs as root."""
    if request.node.get_closest_marker("privileged") is None:
        pytest.fail("a test in tests/privileged carries the marker: pytestmark = pytest.mark.privileged")
    if os.geteuid() != 0:
        pytest.fail("a privileged test needs root (`make test` as root); `make unit` leaves these out")
