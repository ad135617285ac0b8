"""The drain trigger on the speaker's own Node: only its own Node counts, each change is acted on once, in order;
BGPNodeStatus's Drained condition says why."""

from __future__ import annotations

import asyncio
from typing import Any

from ironlb.api.bgp_status import NodeBGPStatus
from ironlb.api.reasons import BGPDrainReason, ConditionType
from ironlb.core.bgp.nodedrain import DrainCause
from ironlb.core.bgp.startdrain import StartDrain
from ironlb.speaker.bgp.nodedrain import NodeDrainTrigger, drained_conditions


class Component:
    """Records what the trigger asks, taking a while for a drain as the real one does (its wait for the peers)."""

    def __init__(self) -> None:
        self.drained: DrainCause | None = None
        self.leftover: StartDrain | None = None
        self.calls: list[str] = []

    async def drain(self, cause: DrainCause = DrainCause.TERMINATING, final: bool = True) -> None:
        assert not final
        await asyncio.sleep(0.05)
        self.drained = cause
        self.calls.append(f"drain {cause.value}")

    async def undrain(self) -> None:
        self.drained = None
        self.calls.append("undrain")


def node(name: str = "n1", unschedulable: bool = False, *taints: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"unschedulable": unschedulable, "taints": [{"key": t, "effect": "NoExecute"} for t in taints]}}


async def settle(trigger: NodeDrainTrigger) -> None:
    while trigger._tasks:
        await asyncio.sleep(0.01)


async def test_cordon_then_uncordon_drains_then_announces_again_in_order() -> None:
    component = Component()
    trigger = NodeDrainTrigger("n1", component)
    trigger.on_node("ADDED", node())
    trigger.on_node("MODIFIED", node(unschedulable=True))
    trigger.on_node("MODIFIED", node(unschedulable=True))  # the same facts: nothing more
    trigger.on_node("MODIFIED", node(unschedulable=False))  # before the drain has finished
    await settle(trigger)
    assert component.calls == ["drain Cordoned", "undrain"]


async def test_only_the_own_node_counts_and_a_new_cause_is_recorded() -> None:
    component = Component()
    trigger = NodeDrainTrigger("n1", component)
    trigger.on_node("MODIFIED", node("n2", True))
    trigger.on_node("MODIFIED", node("n1", True))
    trigger.on_node("MODIFIED", node("n1", True, "node.kubernetes.io/out-of-service"))
    trigger.on_node("DELETED", node("n1", True))
    await settle(trigger)
    assert component.calls == ["drain Cordoned", "drain OutOfService", "drain NodeDeleted"]


async def test_with_the_cordon_trigger_off_only_the_taints_drain() -> None:
    component = Component()
    trigger = NodeDrainTrigger("n1", component, on_cordon=False)
    trigger.on_node("MODIFIED", node("n1", True, "node.kubernetes.io/unschedulable"))  # a maintenance cordon
    await settle(trigger)
    assert component.calls == [] and trigger.wanted is None
    trigger.on_node("MODIFIED", node("n1", True, "node.kubernetes.io/out-of-service"))
    trigger.on_node("MODIFIED", node("n1", True))  # the taint gone, still cordoned: announce again
    await settle(trigger)
    assert component.calls == ["drain OutOfService", "undrain"]


def test_the_drained_condition_says_why_and_keeps_its_time_while_the_reason_stays() -> None:
    component = Component()
    (serving,) = drained_conditions(component, None)
    assert (serving["type"], serving["status"], serving["reason"]) == (
        ConditionType.BGP_DRAINED.value, "False", BGPDrainReason.NOT_DRAINED.value)
    component.drained = DrainCause.CORDONED
    (drained,) = drained_conditions(component, NodeBGPStatus("n1", conditions=(serving,)))
    assert (drained["status"], drained["reason"]) == ("True", BGPDrainReason.CORDONED.value)
    (again,) = drained_conditions(component, NodeBGPStatus("n1", conditions=(dict(drained, lastTransitionTime="t0"),)))
    assert again["lastTransitionTime"] == "t0"
    assert drained_conditions(object(), None) == ()  # a source that cannot drain has no such condition
