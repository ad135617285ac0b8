"""A throwaway PKI (CA, serving cert for 127.0.0.1, client cert) shared by the client's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.common.kubeapi.fake_server import make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding ca.crt, server.crt/key and client.crt/key."""
    return make_pki(tmp_path_factory.mktemp("pki"))
