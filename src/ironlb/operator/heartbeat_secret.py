"""The speakers' heartbeat key: created by the operator at runtime when absent, never rewritten.

A key rendered by the chart (`lookup` + `randAlphaNum`) changes on every `helm template`, which
is how GitOps tools install: each render would hand some speakers a new key and split the
cluster. The leader creates the Secret once instead, with a random key, owned by the operator's
Deployment so that `helm uninstall` takes it away with everything else. An existing Secret is
left as it is: changing the key under running speakers is a rotation (operator.key_rotation,
asked for with an annotation), not a repair.
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ironlb.common.kubeapi import DEPLOYMENTS, SECRETS, ApiError, Client

log = logging.getLogger(__name__)
KEY_BYTES = 48  # 384 random bits; the speakers refuse keys under their minimum length
REQUEST_TIMEOUT_S = 10.0


class SecretOutcome(Enum):
    """What ensuring the heartbeat Secret came to."""

    CREATED = "created"
    EXISTS = "exists"
    RACED = "raced"  # another writer created it first: theirs stands
    FAILED = "failed"


@dataclass(frozen=True)
class HeartbeatSecret:
    """Where the key lives, and who owns the Secret (ownerReferences, may be empty)."""

    namespace: str
    name: str
    key: str = "key"
    owner: tuple[dict[str, Any], ...] = ()


def new_key() -> str:
    """A fresh random key (URL-safe text, KEY_BYTES of entropy)."""
    return secrets.token_urlsafe(KEY_BYTES)


def ensure(kube: Client, want: HeartbeatSecret) -> SecretOutcome:
    """Create the Secret with a new key if it does not exist; never touch one that does."""
    try:
        kube.get(SECRETS, want.name, want.namespace, timeout=REQUEST_TIMEOUT_S)
        return SecretOutcome.EXISTS
    except ApiError as exc:
        if exc.status != 404:
            log.error("cannot read heartbeat Secret %s/%s: %s %s", want.namespace, want.name, exc.status, exc.reason)
            return SecretOutcome.FAILED
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": want.name, "namespace": want.namespace, "ownerReferences": list(want.owner),
                         "labels": {"app.kubernetes.io/part-of": "ironlb"}},
            "data": {want.key: base64.b64encode(new_key().encode()).decode()}}
    try:
        kube.create(SECRETS, body, want.namespace, timeout=REQUEST_TIMEOUT_S)
    except ApiError as exc:
        if exc.status == 409:
            return SecretOutcome.RACED
        log.error("cannot create heartbeat Secret %s/%s: %s %s", want.namespace, want.name, exc.status, exc.reason)
        return SecretOutcome.FAILED
    log.info("created heartbeat Secret %s/%s with a new random key", want.namespace, want.name)
    return SecretOutcome.CREATED


def deployment_owner(kube: Client, namespace: str, name: str) -> tuple[dict[str, Any], ...]:
    """An ownerReference to the operator's Deployment (empty if it cannot be read)."""
    try:
        dep = kube.get(DEPLOYMENTS, name, namespace, timeout=REQUEST_TIMEOUT_S)
    except ApiError as exc:
        log.warning("cannot read Deployment %s/%s (%s): the objects the operator creates will not be "
                    "removed with it", namespace, name, exc.reason)
        return ()
    return ({"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": dep["metadata"]["uid"],
             "blockOwnerDeletion": False},)
