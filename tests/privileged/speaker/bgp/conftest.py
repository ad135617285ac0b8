"""The BGP privileged tests' shared fixture: one FRR pair (node and router) per module."""

from collections.abc import Iterator

import pytest

from tests.privileged.speaker.bgp.frrpair import Pair, frr_pair


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """A node's FRR and a router's FRR in two namespaces, for the module's tests; torn down after."""
    with frr_pair() as p:
        yield p
