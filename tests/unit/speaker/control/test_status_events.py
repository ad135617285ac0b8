"""The speaker's Announced condition and its Events: a first announcement is the condition alone; a
move to another node, or no node, is the condition and an Event."""

from __future__ import annotations

import copy
from typing import Any

from ironlb.api.reasons import AnnounceReason, ConditionType
from ironlb.speaker.control.status import Said, StatusReporter
from tests.unit.speaker.state.test_slim import FakeCore, FakeRecorder, full_service


async def _say(svc: dict[str, Any], said: Said) -> tuple[list[Any], list[Any]]:
    recorder = FakeRecorder()
    reporter = StatusReporter(FakeCore(), "n1", recorder=recorder)  # type: ignore[arg-type]
    reporter.say(svc, ConditionType.SERVICE_ANNOUNCED, said)
    await reporter.flush()
    return reporter.api.patches, [reason.value for _, reason, _ in recorder.events]  # type: ignore[attr-defined]


def _without_conditions() -> dict[str, Any]:
    svc = copy.deepcopy(full_service())
    svc["status"].pop("conditions", None)
    return svc


async def test_a_first_announcement_is_one_write_and_no_event() -> None:
    patches, events = await _say(_without_conditions(), Said(True, AnnounceReason.ANNOUNCING, "203.0.113.10 from n1"))
    assert len(patches) == 1 and events == []


async def test_a_move_and_a_loss_have_their_events() -> None:
    patches, events = await _say(full_service(), Said(True, AnnounceReason.ANNOUNCING, "203.0.113.10 from n9"))
    assert len(patches) == 1 and events == ["NodeAssigned"]
    patches, events = await _say(_without_conditions(), Said(False, AnnounceReason.NO_ELIGIBLE_NODE, "no node"))
    assert len(patches) == 1 and events == ["NotAnnounced"]


async def test_a_withdrawal_is_written_without_an_event() -> None:
    """The operator waits for it; the Service is going, so a NotAnnounced warning would only be noise."""
    patches, events = await _say(full_service(), Said(False, AnnounceReason.WITHDRAWN, "203.0.113.10 withdrawn"))
    assert len(patches) == 1 and events == []
