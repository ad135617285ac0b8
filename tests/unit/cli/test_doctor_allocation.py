"""Each allocator refusal reaches doctor's fix through the Event the operator writes, never through its text.

The real allocator refuses inside the real reconciler; the operator's Event goes through the real
EventRecorder to a sink that keeps the bodies; doctor reads that body and decides on the allocator's
reason in its ironlb.io/reason annotation.
"""

from __future__ import annotations

from typing import Any

import pytest

from ironlb.api.annotations import ADDRESS_POOL, EVENT_REASON, PREFIX
from ironlb.api.reasons import AllocationReason, EventReason
from ironlb.cli.doctor.chain import ALLOCATION_FIXES, UNKNOWN_ALLOCATION_FIX, diagnose
from ironlb.cli.doctor.model import LinkId
from ironlb.common.events import EventRecorder
from ironlb.core.allocation_reason import OK_REASONS
from tests.unit.cli.doctor_facts import edited
from tests.unit.operator.test_reconciler_scenarios import IPS_ANN, SHARED_ANN, Harness, pool, svc

POOL = pool("p", "203.0.113.0/31")
HOLDER = svc("holder", "x", annotations={IPS_ANN: "203.0.113.0", SHARED_ANN: "k"})
FAILING = [r for r in AllocationReason if r not in OK_REASONS]

# reason -> (reuse delay, the cluster before, what happens to it, the Service that is refused)
Case = tuple[float, dict[str, Any], list[tuple[Any, ...]], dict[str, Any]]
CASES: dict[AllocationReason, Case] = {
    AllocationReason.NO_POOL_MATCHES: (0, {"pools": [pool("p", "203.0.113.0/31", autoAssign=False)]}, [],
                                       svc("web", "shop")),
    AllocationReason.POOL_NOT_FOUND: (0, {"pools": [POOL]}, [], svc("web", "shop", {PREFIX + ADDRESS_POOL: "nope"})),
    AllocationReason.POOL_EXHAUSTED: (0, {"pools": [pool("p", "203.0.113.0/32")]}, [("svc", svc("a", "shop"))],
                                      svc("web", "shop")),
    AllocationReason.FAMILY_UNAVAILABLE: (0, {"pools": [POOL]}, [], svc("web", "shop", ipFamilies=["IPv6"])),
    AllocationReason.POOL_NOT_ALLOWED: (0, {"pools": [pool("p", "203.0.113.0/31", autoAssign=False,
                                                           serviceAllocation={"namespaces": ["team"]})]}, [],
                                        svc("web", "shop", {PREFIX + ADDRESS_POOL: "p"})),
    AllocationReason.REQUESTED_IP_NOT_IN_POOL: (0, {"pools": [POOL]}, [], svc("web", "shop", {IPS_ANN: "192.0.2.1"})),
    AllocationReason.REQUESTED_IP_IN_USE: (0, {"pools": [POOL]}, [("svc", HOLDER)],
                                           svc("web", "x", {IPS_ANN: "203.0.113.0"})),
    AllocationReason.REQUESTED_IP_HELD: (300, {"pools": [POOL]}, [("svc", HOLDER), ("unsvc", "x/holder")],
                                         svc("web", "shop", {IPS_ANN: "203.0.113.0"})),
    AllocationReason.SHARING_INCOMPATIBLE: (0, {"pools": [POOL]}, [("svc", HOLDER)],
                                            svc("web", "x", {IPS_ANN: "203.0.113.0", SHARED_ANN: "other"})),
    AllocationReason.INVALID_REQUEST: (0, {"pools": [POOL]}, [], svc("web", "shop", {IPS_ANN: "not-an-ip"})),
}


class KeptEvents:
    """An EventSink that keeps every Event body created."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create(self, namespace: str, body: dict[str, Any]) -> None:
        self.created.append(body)

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Counts of Events already kept: nothing new for doctor."""


async def allocation_failed_event(case: Case) -> dict[str, Any]:
    """The AllocationFailed Event body the operator writes on shop/web or x/web in CASE."""
    reuse_delay, start, changes, refused = case
    sink = KeptEvents()
    harness = Harness(start, reuse_delay=reuse_delay)
    harness.api.recorder = EventRecorder(sink, "ironlb-operator", "test")
    try:
        for change in changes:
            await harness.run(change)
        await harness.run(("svc", refused))
    finally:
        await harness.reconciler.stop()
        harness.api.recorder.close()
    name = refused["metadata"]["name"]
    return next(b for b in reversed(sink.created)
                if b["reason"] == EventReason.ALLOCATION_FAILED.value and b["involvedObject"]["name"] == name)


def test_every_refusal_has_a_case_and_a_fix() -> None:
    assert set(CASES) == set(FAILING) == set(ALLOCATION_FIXES)


@pytest.mark.parametrize("reason", FAILING, ids=[r.value for r in FAILING])
async def test_each_allocator_reason_reaches_doctors_fix_through_the_event(reason: AllocationReason) -> None:
    event = await allocation_failed_event(CASES[reason])
    assert event["metadata"]["annotations"] == {EVENT_REASON: reason.value}, event
    report = diagnose(edited(lambda f: _refused(f, event)))
    failed = report.failed
    assert failed is not None and failed.id is LinkId.ALLOCATION
    assert failed.fix == ALLOCATION_FIXES[reason]
    assert f"({reason.value})" in failed.details[0]


def test_an_event_without_a_reason_gets_the_general_fix() -> None:
    """An AllocationFailed Event from an operator that wrote no annotation: doctor does not guess from its words."""
    event = {"reason": EventReason.ALLOCATION_FAILED.value, "message": "no free IPv4 address in pool(s) p"}
    failed = diagnose(edited(lambda f: _refused(f, event))).failed
    assert failed is not None and failed.id is LinkId.ALLOCATION and failed.fix == UNKNOWN_ALLOCATION_FIX


def _refused(facts: dict[str, Any], event: dict[str, Any]) -> None:
    """The doctor facts of a Service that got no IP, with EVENT as its only Event."""
    facts["service"]["status"] = {"loadBalancer": {}, "conditions": []}
    facts["service"]["metadata"]["annotations"] = {}
    facts["events"] = [event]
