"""Fixtures shared by the unit tests: a scripted API server on 127.0.0.1 and IronLB's client connected to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ironlb.common.kubeapi import Client, ClusterConfig
from ironlb.common.kubeapi.config import TokenSource
from tests.unit.common.kubeapi.fake_server import FakeApiServer

CLIENT_TOKEN = "client-token"


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    """A scripted API server, plain HTTP."""
    with FakeApiServer() as s:
        yield s


@pytest.fixture
def api_client(api_server: FakeApiServer) -> Iterator[Client]:
    """IronLB's client for API_SERVER, sending CLIENT_TOKEN."""
    with Client(ClusterConfig("http", "127.0.0.1", api_server.port, token=TokenSource(CLIENT_TOKEN))) as c:
        yield c
