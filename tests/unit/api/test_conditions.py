"""The Announced condition's words: written and read back by one format."""

from __future__ import annotations

import pytest

from ironlb.api.conditions import announced_in, announced_part, announcers, condition
from ironlb.api.reasons import AnnounceReason, ConditionType


def test_what_is_written_is_read_back() -> None:
    message = "; ".join([announced_part("203.0.113.5", "node-2", ("eth0", "eth1")),
                         announced_part("2001:db8::5", "node-3", None)])
    assert announced_in(message) == {"203.0.113.5": ("node-2", "eth0,eth1"),
                                     "2001:db8::5": ("node-3", "all interfaces")}


def status(true: bool, reason: AnnounceReason, message: str) -> dict:
    return {"conditions": [condition(ConditionType.SERVICE_ANNOUNCED, true, reason, message, since="t")]}


@pytest.mark.parametrize(("given", "expected"), [
    (status(True, AnnounceReason.ANNOUNCING, announced_part("203.0.113.5", "node-2", None)),
     {"203.0.113.5": "node-2"}),
    # Only a condition that says the IPs are announced names announcers
    (status(False, AnnounceReason.NO_ELIGIBLE_NODE, announced_part("203.0.113.5", "node-2", None)), {}),
    ({"conditions": [{"type": "ironlb.io/Announced", "status": "True", "reason": "Announcing", "message": 7}]}, {}),
    ({"conditions": [{"type": "Other", "status": "True", "reason": "Announcing",
                      "message": announced_part("203.0.113.5", "node-2", None)}]}, {}),
    (None, {}),
])
def test_announcers(given: dict | None, expected: dict[str, str]) -> None:
    assert announcers(given) == expected
