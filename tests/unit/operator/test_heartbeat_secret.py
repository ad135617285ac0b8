"""The heartbeat Secret: created once with a strong random key, never rewritten, owned for clean-up."""

from __future__ import annotations

import base64
from typing import Any

from kubernetes.client.rest import ApiException

from ironlb.operator.heartbeat_secret import HeartbeatSecret, SecretOutcome, ensure, new_key


class FakeSecrets:
    def __init__(self, exists: bool = False, create_status: int | None = None) -> None:
        self.stored: dict[str, Any] | None = {"data": {"key": "dXNlcg=="}} if exists else None
        self.create_status = create_status
        self.timeouts: list[Any] = []

    def read_namespaced_secret(self, name: str, namespace: str, **kw: Any) -> Any:
        self.timeouts.append(kw.get("_request_timeout"))
        if self.stored is None:
            raise ApiException(status=404)
        return self.stored

    def create_namespaced_secret(self, namespace: str, body: dict[str, Any], **kw: Any) -> None:
        self.timeouts.append(kw.get("_request_timeout"))
        if self.create_status:
            raise ApiException(status=self.create_status)
        self.stored = body


OWNER = ({"apiVersion": "apps/v1", "kind": "Deployment", "name": "ironlb-operator", "uid": "u1"},)


def test_absent_secret_is_created_with_a_random_key_and_an_owner() -> None:
    api = FakeSecrets()
    assert ensure(api, HeartbeatSecret("ns", "hb", "key", OWNER)) is SecretOutcome.CREATED  # type: ignore[arg-type]
    assert api.stored is not None
    key = base64.b64decode(api.stored["data"]["key"])
    assert len(key) >= 64
    assert api.stored["metadata"]["ownerReferences"] == list(OWNER)
    assert all(api.timeouts)


def test_an_existing_secret_is_never_rewritten() -> None:
    api = FakeSecrets(exists=True)
    assert ensure(api, HeartbeatSecret("ns", "hb")) is SecretOutcome.EXISTS  # type: ignore[arg-type]
    assert api.stored == {"data": {"key": "dXNlcg=="}}


def test_a_race_keeps_the_other_writers_key_and_errors_are_reported() -> None:
    assert ensure(FakeSecrets(create_status=409), HeartbeatSecret("ns", "hb")) is SecretOutcome.RACED  # type: ignore[arg-type]
    assert ensure(FakeSecrets(create_status=403), HeartbeatSecret("ns", "hb")) is SecretOutcome.FAILED  # type: ignore[arg-type]


def test_keys_are_fresh_each_time() -> None:
    assert len({new_key() for _ in range(20)}) == 20
