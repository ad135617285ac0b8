"""Speaker presence: what a value says, and how a renewal lands (patch, create when missing, races)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ironlb.common.kubeapi import CONFIGMAPS, ApiError, Resource
from ironlb.speaker.control.presence import Presence, parse

PARSES = [("r1-3 2", ("r1-3", 2)), ("r1-3 0", ("r1-3", 0)), ("", None), ("r1-3", None), ("r1-3 x", None),
          (" 2", None)]


@pytest.mark.parametrize(("value", "want"), PARSES)
def test_parse(value: str, want: tuple[str, int] | None) -> None:
    assert parse(value) == want


class FakeCore:
    """The API client's ConfigMap calls, on one ConfigMap held in memory."""

    def __init__(self, exists: bool = True, create_status: int | None = None) -> None:
        self.data: dict[str, str] | None = {} if exists else None
        self.create_status = create_status
        self.calls: list[str] = []

    def patch(self, resource: Resource, name: str, body: dict, namespace: str, **kw: Any) -> dict[str, Any]:
        assert resource == CONFIGMAPS and kw["timeout"]
        self.calls.append("patch")
        if self.data is None:
            raise ApiError(404, "Not Found")
        self.data.update(body["data"])
        return {}

    def create(self, resource: Resource, body: dict, namespace: str, **kw: Any) -> dict[str, Any]:
        assert resource == CONFIGMAPS and kw["timeout"]
        self.calls.append("create")
        if self.create_status:
            raise ApiError(self.create_status, "Conflict" if self.create_status == 409 else "Forbidden")
        self.data = dict(body["data"])
        return body

    def get(self, resource: Resource, name: str, namespace: str, **kw: Any) -> dict[str, Any]:
        assert resource == CONFIGMAPS and kw["timeout"]
        return {"data": {**(self.data or {}), "garbled": "no-count"}}


def presence(core: FakeCore, heard: list[int]) -> Presence:
    return Presence(core, "ns", "n1", lambda: heard[0])  # type: ignore[arg-type]


def test_each_renewal_changes_the_value_and_carries_the_heard_count() -> None:
    core, heard = FakeCore(), [2]
    p = presence(core, heard)
    assert p.write()
    first = core.data["n1"]  # type: ignore[index]
    heard[0] = 0
    assert p.write()
    assert core.data["n1"] != first and core.data["n1"].endswith(" 0")  # type: ignore[index]
    assert p.read() == {"n1": parse(core.data["n1"])}  # type: ignore[index]  # the garbled key is skipped


def test_a_missing_configmap_is_created_and_a_lost_race_is_fine_but_a_refusal_counts() -> None:
    core = FakeCore(exists=False)
    assert presence(core, [1]).write() and core.calls == ["patch", "create"] and "n1" in core.data  # type: ignore[operator]
    raced = FakeCore(exists=False, create_status=409)
    assert presence(raced, [1]).write()
    refused = FakeCore(exists=False, create_status=403)
    p = presence(refused, [1])
    assert not p.write() and p.failures == 1


def test_a_nudge_renews_before_the_interval() -> None:
    core = FakeCore()
    p = presence(core, [1])
    p.interval = 30.0

    async def scenario() -> int:
        task = asyncio.create_task(p.run())
        await asyncio.sleep(0.05)
        p.nudge()
        await asyncio.sleep(0.05)
        task.cancel()
        return p.writes

    assert asyncio.run(scenario()) == 2
