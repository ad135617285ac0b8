"""Shared by the client's tests: a throwaway PKI (CA, serving cert for 127.0.0.1, client cert), a scripted server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.common.kubeapi.fake_server import FakeApiServer, make_pki


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    """A scripted API server on 127.0.0.1, plain HTTP."""
    with FakeApiServer() as s:
        yield s


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding ca.crt, server.crt/key and client.crt/key."""
    return make_pki(tmp_path_factory.mktemp("pki"))
