"""Heartbeat key rotation in two steps with a window, so no two speakers ever stop trusting each other.

Asked for by a new value of the annotation `ironlb.io/rotate` on the heartbeat Secret (e.g.
`kubectl annotate secret ironlb-heartbeat ironlb.io/rotate=$(date +%s) --overwrite`). The leader:

1. ADD_NEXT: writes a new key under `next`. Speakers accept it, and still sign with `key`.
2. after WINDOW, SWITCH: `key` = the new key, `previous` = the old one. Speakers sign with the
   new key and still accept the old one, so a speaker that has not seen this step yet (and signs
   with the old key) is still heard, and it already accepts the new key from step 1.
3. after WINDOW, DROP_PREVIOUS: the old key is gone.

No split holds as long as every speaker sees each version of the Secret within WINDOW of its
write (speakers watch it, so normally within milliseconds; a speaker cut from the API for longer
than a window loses its peers' heartbeats and must be restarted once the API is back). The phase
and its start time live in annotations on the Secret, so a new leader carries on where the old
one stopped. The `plan` function is pure; `RotationLoop` applies its patches.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ironlb.api.annotations import ROTATE, ROTATED, ROTATION_PHASE, ROTATION_PHASE_SINCE
from ironlb.common.kubeapi import SECRETS, ApiError, Client

log = logging.getLogger(__name__)
NEXT, PREVIOUS = "next", "previous"
DEFAULT_WINDOW_S = 120.0
REQUEST_TIMEOUT_S = 10.0


class Phase(Enum):
    """Where a rotation stands."""

    IDLE = "idle"
    ACCEPTING_NEXT = "accepting-next"
    RETIRING_PREVIOUS = "retiring-previous"


class Step(Enum):
    """What the leader does to the Secret now."""

    NONE = "none"                    # nothing asked, nothing under way
    WAIT = "wait"                    # a phase is under way; its window has not passed
    ADD_NEXT = "add-next"
    SWITCH = "switch"
    DROP_PREVIOUS = "drop-previous"
    RESTART = "restart"              # the Secret was edited mid-rotation (next gone): start over


@dataclass(frozen=True)
class Plan:
    """A step, and the patch that makes it: data and annotation values (None removes one)."""

    step: Step
    data: dict[str, str | None] = field(default_factory=dict)
    annotations: dict[str, str | None] = field(default_factory=dict)


def phase_of(annotations: Mapping[str, str]) -> Phase:
    """The rotation phase recorded on the Secret (unknown values read as idle)."""
    try:
        return Phase(annotations.get(ROTATION_PHASE, Phase.IDLE.value))
    except ValueError:
        return Phase.IDLE


def _since(annotations: Mapping[str, str]) -> float | None:
    try:
        return float(annotations[ROTATION_PHASE_SINCE])
    except (KeyError, ValueError):
        return None


def plan(data: Mapping[str, str], annotations: Mapping[str, str], now: float, window: float,
         new_key: Callable[[], str], key_name: str = "key") -> Plan:
    """The next step of a rotation, from the Secret's (base64) DATA and ANNOTATIONS at wall time NOW."""
    phase = phase_of(annotations)
    stamp = {ROTATION_PHASE: None, ROTATION_PHASE_SINCE: None}
    if phase is Phase.IDLE:
        asked = annotations.get(ROTATE)
        if not asked or asked == annotations.get(ROTATED) or key_name not in data:
            return Plan(Step.NONE)
        return Plan(Step.ADD_NEXT, {NEXT: _b64(new_key())},
                    {ROTATION_PHASE: Phase.ACCEPTING_NEXT.value, ROTATION_PHASE_SINCE: _stamp(now), ROTATED: asked})
    since = _since(annotations)
    if since is None:  # a phase with no readable start: its window starts now (late rather than early)
        return Plan(Step.WAIT, {}, {ROTATION_PHASE_SINCE: _stamp(now)})
    if now - since < window:
        return Plan(Step.WAIT)
    if phase is Phase.ACCEPTING_NEXT:
        if not data.get(NEXT) or key_name not in data:
            return Plan(Step.RESTART, {NEXT: None}, {**stamp, ROTATED: None})
        return Plan(Step.SWITCH, {key_name: data[NEXT], PREVIOUS: data[key_name], NEXT: None},
                    {ROTATION_PHASE: Phase.RETIRING_PREVIOUS.value, ROTATION_PHASE_SINCE: _stamp(now)})
    return Plan(Step.DROP_PREVIOUS, {PREVIOUS: None}, stamp)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _stamp(now: float) -> str:
    return f"{now:.3f}"


class RotationLoop:
    """Polls the heartbeat Secret and applies `plan` while this replica may write (the leader)."""

    def __init__(self, kube: Client, namespace: str, name: str, key_name: str,
                 may_write: Callable[[], bool], new_key: Callable[[], str], window: float = DEFAULT_WINDOW_S,
                 poll: float = 2.0, clock: Callable[[], float] = time.time) -> None:
        self.kube, self.namespace, self.name, self.key_name = kube, namespace, name, key_name
        self.may_write, self.new_key, self.window, self.poll, self.clock = may_write, new_key, window, poll, clock
        self.steps: dict[str, int] = {}

    def once(self) -> Step:
        """Read the Secret, take one step if due (blocking; the patch carries its resourceVersion)."""
        try:
            secret = self.kube.get(SECRETS, self.name, self.namespace, timeout=REQUEST_TIMEOUT_S)
        except ApiError as exc:
            if exc.status != 404:
                log.warning("cannot read heartbeat Secret %s/%s: %s", self.namespace, self.name, exc.reason)
            return Step.NONE
        meta = secret.get("metadata") or {}
        todo = plan(secret.get("data") or {}, meta.get("annotations") or {}, self.clock(), self.window, self.new_key,
                    self.key_name)
        if not (todo.data or todo.annotations) or not self.may_write():
            return todo.step
        body: dict[str, Any] = {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                                             "annotations": todo.annotations}}
        if todo.data:
            body["data"] = todo.data
        try:
            self.kube.patch(SECRETS, self.name, body, self.namespace, timeout=REQUEST_TIMEOUT_S)
        except ApiError as exc:  # 409: someone wrote in between; the next poll reads it again
            log.warning("heartbeat key rotation step %s not written: %s %s", todo.step.value, exc.status, exc.reason)
            return Step.WAIT
        self.steps[todo.step.value] = self.steps.get(todo.step.value, 0) + 1
        log.info("heartbeat key rotation: %s", todo.step.value)
        return todo.step

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            try:
                await asyncio.to_thread(self.once)
            except Exception:  # a bad poll must not end rotation for the leader's whole term
                log.exception("heartbeat key rotation poll failed")
            await asyncio.sleep(self.poll)
