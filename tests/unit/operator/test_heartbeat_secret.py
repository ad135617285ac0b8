"""The heartbeat Secret: created once with a strong random key, never rewritten, owned for clean-up."""

from __future__ import annotations

import base64
from typing import Any

from ironlb.common.kubeapi import DEPLOYMENTS, SECRETS, ApiError, Resource
from ironlb.operator.heartbeat_secret import HeartbeatSecret, SecretOutcome, deployment_owner, ensure, new_key


class FakeSecrets:
    """The client's get and create on one Secret (and one Deployment)."""

    def __init__(self, exists: bool = False, create_status: int | None = None) -> None:
        self.stored: dict[str, Any] | None = {"data": {"key": "dXNlcg=="}} if exists else None
        self.create_status = create_status
        self.timeouts: list[Any] = []

    def get(self, resource: Resource, name: str, namespace: str | None = None, *, timeout: Any = None) -> Any:
        self.timeouts.append(timeout)
        if resource is DEPLOYMENTS and name == "ironlb-operator":
            return {"metadata": {"name": name, "namespace": namespace, "uid": "u1"}}
        if resource is not SECRETS or self.stored is None:
            raise ApiError(404, "Not Found")
        return self.stored

    def create(self, resource: Resource, body: dict[str, Any], namespace: str | None = None, *,
               timeout: Any = None) -> Any:
        assert resource is SECRETS and namespace == body["metadata"]["namespace"]
        self.timeouts.append(timeout)
        if self.create_status:
            raise ApiError(self.create_status, "refused")
        self.stored = body
        return body


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


def test_the_owner_is_the_operators_deployment_when_it_can_be_read() -> None:
    api = FakeSecrets()
    assert deployment_owner(api, "ns", "ironlb-operator") == (  # type: ignore[arg-type]
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ironlb-operator", "uid": "u1",
         "blockOwnerDeletion": False},)
    assert deployment_owner(api, "ns", "gone") == ()  # type: ignore[arg-type]


def test_keys_are_fresh_each_time() -> None:
    assert len({new_key() for _ in range(20)}) == 20
