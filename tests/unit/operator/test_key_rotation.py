"""Heartbeat key rotation, the leader's side: the pure plan step by step, and the loop that writes it."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ironlb.api.annotations import ROTATE, ROTATED
from ironlb.api.annotations import ROTATION_PHASE as PHASE
from ironlb.api.annotations import ROTATION_PHASE_SINCE as SINCE
from ironlb.common.kubeapi import SECRETS, ApiError, Resource
from ironlb.operator.key_rotation import NEXT, PREVIOUS, Phase, RotationLoop, Step, plan
from tests.unit.fakeclock import FakeClock

K, N = base64.b64encode(b"old" * 16).decode(), base64.b64encode(b"new" * 16).decode()
W = 10.0
ACC, RET = Phase.ACCEPTING_NEXT.value, Phase.RETIRING_PREVIOUS.value

# (case, data, annotations, now, expected step, expected data patch, expected annotation patch (subset))
CASES: list[tuple[str, dict[str, str], dict[str, str], float, Step, dict[str, Any] | None, dict[str, Any]]] = [
    ("nothing asked", {"key": K}, {}, 100, Step.NONE, {}, {}),
    ("asked: the new key is first only accepted", {"key": K}, {ROTATE: "a"}, 100, Step.ADD_NEXT,
     {NEXT: base64.b64encode(b"fresh").decode()}, {PHASE: ACC, SINCE: "100.000", ROTATED: "a"}),
    ("the same value again asks nothing", {"key": K}, {ROTATE: "a", ROTATED: "a"}, 100, Step.NONE, {}, {}),
    ("a new value asks again", {"key": K}, {ROTATE: "b", ROTATED: "a"}, 100, Step.ADD_NEXT, None, {ROTATED: "b"}),
    ("no send key: nothing to rotate", {}, {ROTATE: "a"}, 100, Step.NONE, {}, {}),
    ("accepting, inside the window", {"key": K, NEXT: N}, {PHASE: ACC, SINCE: "95"}, 100, Step.WAIT, {}, {}),
    ("accepting, window passed: sign with the new key, keep accepting the old", {"key": K, NEXT: N},
     {PHASE: ACC, SINCE: "90"}, 100, Step.SWITCH, {"key": N, PREVIOUS: K, NEXT: None},
     {PHASE: RET, SINCE: "100.000"}),
    ("accepting with no start time: the window starts now", {"key": K, NEXT: N}, {PHASE: ACC}, 100, Step.WAIT,
     {}, {SINCE: "100.000"}),
    ("accepting with a garbled start time: the window starts now", {"key": K, NEXT: N},
     {PHASE: ACC, SINCE: "soon"}, 100, Step.WAIT, {}, {SINCE: "100.000"}),
    ("a start time in the future (another leader's clock ahead): wait", {"key": K, NEXT: N},
     {PHASE: ACC, SINCE: "150"}, 100, Step.WAIT, {}, {}),
    ("next removed by hand mid-rotation: start over", {"key": K}, {PHASE: ACC, SINCE: "0", ROTATED: "a"}, 100,
     Step.RESTART, {NEXT: None}, {PHASE: None, SINCE: None, ROTATED: None}),
    ("retiring, inside the window", {"key": N, PREVIOUS: K}, {PHASE: RET, SINCE: "99"}, 100, Step.WAIT, {}, {}),
    ("retiring, window passed: the old key goes", {"key": N, PREVIOUS: K}, {PHASE: RET, SINCE: "80"}, 100,
     Step.DROP_PREVIOUS, {PREVIOUS: None}, {PHASE: None, SINCE: None}),
    ("an unknown phase reads as idle", {"key": K}, {PHASE: "bogus", ROTATE: "a", ROTATED: "a"}, 100, Step.NONE,
     {}, {}),
]


@pytest.mark.parametrize(("case", "data", "ann", "now", "step", "data_patch", "ann_patch"), CASES,
                         ids=[c[0] for c in CASES])
def test_plan(case: str, data: dict[str, str], ann: dict[str, str], now: float, step: Step,
              data_patch: dict[str, Any] | None, ann_patch: dict[str, Any]) -> None:
    got = plan(data, ann, now, W, lambda: "fresh")
    assert got.step is step
    if data_patch is not None:
        assert got.data == data_patch
    assert ann_patch.items() <= got.annotations.items()


class FakeCore:
    """The client's get and patch on one Secret with resourceVersions; patches merge like the API's (None removes
    a key)."""

    def __init__(self, data: dict[str, str], annotations: dict[str, str]) -> None:
        self.data, self.annotations, self.version = dict(data), dict(annotations), 1
        self.conflict_next = False
        self.patches: list[dict[str, Any]] = []

    def get(self, resource: Resource, name: str, namespace: str | None = None, **_: Any) -> Any:
        assert resource is SECRETS and (namespace, name) == ("ns", "hb")
        return {"metadata": {"annotations": dict(self.annotations), "resourceVersion": str(self.version)},
                "data": dict(self.data)}

    def patch(self, resource: Resource, name: str, body: dict[str, Any], namespace: str | None = None,
              **kw: Any) -> Any:
        assert resource is SECRETS and (namespace, name) == ("ns", "hb")
        assert kw.get("timeout")
        if self.conflict_next or body["metadata"]["resourceVersion"] != str(self.version):
            self.conflict_next = False
            raise ApiError(409, "Conflict")
        self.patches.append(body)
        for store, patch in ((self.data, body.get("data") or {}), (self.annotations, body["metadata"]["annotations"])):
            for k, v in patch.items():
                if v is None:
                    store.pop(k, None)
                else:
                    store[k] = v
        self.version += 1
        return self.get(resource, name, namespace)


def test_a_whole_rotation_takes_three_writes_a_window_apart_and_survives_a_conflict() -> None:
    core, clock = FakeCore({"key": K}, {ROTATE: "2026-12-01"}), FakeClock(1000.0)
    loop = RotationLoop(core, "ns", "hb", "key", lambda: True, lambda: "n" * 64, window=W, clock=clock)  # type: ignore[arg-type]
    assert loop.once() is Step.ADD_NEXT
    assert core.data["key"] == K and base64.b64decode(core.data[NEXT]) == b"n" * 64
    clock.now += W - 0.1
    assert loop.once() is Step.WAIT
    clock.now += 0.2
    core.conflict_next = True  # someone edited the Secret in between: nothing written, read again next poll
    assert loop.once() is Step.WAIT
    assert loop.once() is Step.SWITCH
    assert core.data == {"key": base64.b64encode(b"n" * 64).decode(), PREVIOUS: K}
    clock.now += W
    assert loop.once() is Step.DROP_PREVIOUS
    assert core.data == {"key": base64.b64encode(b"n" * 64).decode()}
    assert core.annotations == {ROTATE: "2026-12-01", ROTATED: "2026-12-01"}
    assert loop.once() is Step.NONE and len(core.patches) == 3


def test_a_replica_that_may_not_write_reads_but_never_writes() -> None:
    core = FakeCore({"key": K}, {ROTATE: "x"})
    loop = RotationLoop(core, "ns", "hb", "key", lambda: False, lambda: "n" * 64, window=W)  # type: ignore[arg-type]
    assert loop.once() is Step.ADD_NEXT
    assert not core.patches and NEXT not in core.data

