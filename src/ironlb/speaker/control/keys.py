"""The heartbeat keys from their Secret, read at start and followed at runtime (a rotation).

The Secret holds the key heartbeats are signed with (`key`, or whatever --heartbeat-secret-key
names) and, during a rotation, the keys also accepted: `next` (the coming key, published first)
and `previous` (the key just replaced, still accepted for a window). See operator.key_rotation.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ironlb.common.informer import Informer, ResourceListWatch
from ironlb.common.kubeapi import SECRETS, ApiError, Client
from ironlb.speaker.fast.liveness.protocol import MIN_KEY_BYTES, KeySet

log = logging.getLogger(__name__)
NEXT, PREVIOUS = "next", "previous"  # the accepted-only keys of a rotation, beside the send key


class KeyVerdict(Enum):
    """What a Secret's data came to as heartbeat keys."""

    OK = "ok"
    MISSING = "missing"      # no send key: wait (or keep the keys in use)
    TOO_SHORT = "too-short"  # a short key is guessable from one captured heartbeat: refused
    NOT_BASE64 = "not-base64"


@dataclass(frozen=True)
class KeyReading:
    """A verdict, the keys when OK, and which accepted-only keys were refused (too short or garbled)."""

    verdict: KeyVerdict
    keys: KeySet | None = None
    refused: tuple[str, ...] = ()


def _decode(value: str | None) -> tuple[KeyVerdict, bytes]:
    if not value:
        return KeyVerdict.MISSING, b""
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return KeyVerdict.NOT_BASE64, b""
    return (KeyVerdict.OK if len(raw) >= MIN_KEY_BYTES else KeyVerdict.TOO_SHORT), raw


def read_keys(data: Mapping[str, str] | None, key_name: str = "key") -> KeyReading:
    """The KeySet in a Secret's (base64) DATA: send with KEY_NAME, accept it, `next` and `previous`."""
    data = data or {}
    verdict, send = _decode(data.get(key_name))
    if verdict is not KeyVerdict.OK:
        return KeyReading(verdict)
    accepted, refused = [send], []
    for name in (NEXT, PREVIOUS):
        if name == key_name or name not in data:
            continue
        extra_verdict, extra = _decode(data[name])
        if extra_verdict is KeyVerdict.OK:
            accepted.append(extra)
        else:
            refused.append(name)
    return KeyReading(KeyVerdict.OK, KeySet(send, tuple(accepted)), tuple(refused))


async def read_key(api: Client, namespace: str, name: str, key: str) -> KeySet:
    """The heartbeat keys from their Secret (waits for a usable one: without it no peer can be trusted)."""
    while True:
        try:
            secret = await asyncio.to_thread(api.get, SECRETS, name, namespace)
            reading = read_keys(secret.get("data"), key)
            if reading.keys is not None:
                return reading.keys
            if reading.verdict is KeyVerdict.TOO_SHORT:  # loudly: a short key is guessable
                log.error("the key %r in Secret %s/%s has fewer than the %d required bytes; waiting for a longer "
                          "one", key, namespace, name, MIN_KEY_BYTES)
            else:
                log.error("Secret %s/%s: key %r is %s; waiting", namespace, name, key, reading.verdict.value)
        except ApiError as exc:
            log.error("cannot read heartbeat Secret %s/%s (%s); waiting", namespace, name, exc.reason)
        await asyncio.sleep(2)


class KeyWatcher:
    """Follows the heartbeat Secret; calls `on_keys(KeySet)` whenever its usable keys change.

    A Secret edited into something unusable (send key removed, too short) changes nothing: the
    keys in use stay, and the error is logged once per bad version."""

    def __init__(self, api: Client, namespace: str, name: str, key_name: str,
                 on_keys: Callable[[KeySet], None], current: KeySet) -> None:
        self.namespace, self.name, self.key_name = namespace, name, key_name
        self.on_keys, self.current = on_keys, current
        self.api = api
        self.refusals = 0
        self.informer: Informer | None = None

    def start(self) -> None:
        """Start watching (one object: a field selector on its name, which RBAC resourceNames allows)."""
        source = ResourceListWatch(self.api, SECRETS, self.namespace, fieldSelector=f"metadata.name={self.name}")
        self.informer = Informer("heartbeat-secret", source, self._on_event, asyncio.get_running_loop())
        self.informer.start()

    def _on_event(self, event: str, obj: dict[str, Any]) -> None:
        if event == "DELETED":
            log.error("heartbeat Secret %s/%s was deleted; keeping the keys in use", self.namespace, self.name)
            return
        self.apply(obj.get("data"))

    def apply(self, data: Mapping[str, str] | None) -> KeyVerdict:
        """Take DATA's keys if usable and different from the ones in use."""
        reading = read_keys(data, self.key_name)
        if reading.keys is None:
            self.refusals += 1
            log.error("heartbeat Secret %s/%s: key %r is %s; keeping the keys in use", self.namespace, self.name,
                      self.key_name, reading.verdict.value)
            return reading.verdict
        if reading.refused:
            log.error("heartbeat Secret %s/%s: %s refused (fewer than %d bytes, or not base64)", self.namespace,
                      self.name, ", ".join(reading.refused), MIN_KEY_BYTES)
        if reading.keys != self.current:
            self.current = reading.keys
            log.info("heartbeat keys changed: signing with %s, accepting %d key(s)", _fingerprint(reading.keys.send),
                     len(reading.keys.accepted))
            self.on_keys(reading.keys)
        return KeyVerdict.OK

    def stop(self) -> None:
        """Stop watching."""
        if self.informer is not None:
            self.informer.stop()


def _fingerprint(key: bytes) -> str:
    """A short, non-secret name for a key in logs."""
    return hashlib.sha256(b"ironlb-fingerprint:" + key).hexdigest()[:8]
