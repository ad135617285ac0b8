"""Speakers' presence in the API: the evidence self-fencing weighs when no peer is heard.

Each speaker writes its own key in one ConfigMap (`ironlb-speaker-presence`, in the speaker's
namespace): `<run>-<seq> <peers heard>`, every INTERVAL and at once when it starts or stops
hearing peers. A value that changes proves the speaker behind it alive and reaching the API; the
count says whether it is in a group (it hears someone) or alone. The speaker's own key, not the
kubelet's node Lease: a crashed speaker on a live node must not pass for a live peer. One object
with one key per node lets RBAC name it (resourceNames), and costs one small patch per node per
interval, whatever the number of Services.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable

from ironlb.common.kubeapi import CONFIGMAPS, ApiError, Client
from ironlb.common.throttle import Throttle

log = logging.getLogger(__name__)
DEFAULT_NAME = "ironlb-speaker-presence"
DEFAULT_INTERVAL_S = 10.0
TIMEOUT = (1.0, 2.0)  # (connect, read) seconds


def parse(value: str) -> tuple[str, int] | None:
    """A presence value as (renewal token, peers heard); None if garbled."""
    token, _, heard = value.partition(" ")
    try:
        return (token, int(heard)) if token else None
    except ValueError:
        return None


class Presence:
    """Writes this node's presence; reads everyone's."""

    def __init__(self, api: Client, namespace: str, node: str, heard: Callable[[], int],
                 name: str = DEFAULT_NAME, interval: float = DEFAULT_INTERVAL_S) -> None:
        self.api = api
        self.namespace, self.node, self.heard, self.name, self.interval = namespace, node, heard, name, interval
        self.run_id = secrets.token_hex(4)
        self.seq = 0
        self.writes = self.failures = 0
        self._nudge = asyncio.Event()
        self._errors = Throttle(60.0)

    def nudge(self) -> None:
        """Write now (the heard count went from none to some, or back)."""
        self._nudge.set()

    def write(self) -> bool:
        """One renewal (blocking); creates the ConfigMap if it is missing and we may."""
        self.seq += 1
        value = f"{self.run_id}-{self.seq} {self.heard()}"
        try:
            self.api.patch(CONFIGMAPS, self.name, {"data": {self.node: value}}, self.namespace, timeout=TIMEOUT)
        except ApiError as exc:
            if exc.status != 404 or not self._create(value):
                self._failed(f"{exc.status} {exc.reason}")
                return False
        except Exception as exc:  # the API is out of reach: fencing reads that on its own
            self._failed(type(exc).__name__)
            return False
        self.writes += 1
        return True

    def _create(self, value: str) -> bool:
        body = {"metadata": {"name": self.name, "namespace": self.namespace,
                             "labels": {"app.kubernetes.io/part-of": "ironlb"}}, "data": {self.node: value}}
        try:
            self.api.create(CONFIGMAPS, body, self.namespace, timeout=TIMEOUT)
        except ApiError as exc:
            return exc.status == 409  # another speaker created it first: our next write lands
        return True

    def _failed(self, why: str) -> None:
        self.failures += 1
        if self._errors.allow("write") is not None:
            log.warning("cannot renew presence in ConfigMap %s/%s (%s)", self.namespace, self.name, why)

    def read(self) -> dict[str, tuple[str, int]]:
        """Every speaker's (token, heard) (blocking; raises when the API cannot be reached)."""
        cm = self.api.get(CONFIGMAPS, self.name, self.namespace, timeout=TIMEOUT)
        return {node: parsed for node, value in (cm.get("data") or {}).items() if (parsed := parse(value))}

    async def run(self) -> None:
        """Renew every interval, or sooner when nudged, until cancelled."""
        while True:
            await asyncio.to_thread(self.write)
            self._nudge.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), self.interval)
