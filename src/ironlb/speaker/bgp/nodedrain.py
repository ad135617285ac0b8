"""Drain on the speaker's own Node: the watch it already has hands each event of its Node here; the pure decision
(core.bgp.nodedrain) says drain or announce again, and BGP mode's component does it, one change at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ironlb.api.conditions import condition, now_stamp
from ironlb.api.reasons import BGPDrainReason, ConditionType, StartDrain
from ironlb.core.bgp.nodedrain import DrainAction, DrainCause, NodeFacts, decide, drain_cause

log = logging.getLogger("ironlb.speaker.bgp")
REASONS = {c: BGPDrainReason(c.value) for c in DrainCause}


@runtime_checkable
class Drainable(Protocol):
    """What the trigger needs of BGP mode's component (speaker.bgp.component.BgpComponent)."""

    drained: DrainCause | None

    async def drain(self, cause: DrainCause = ..., final: bool = ...) -> Any: ...

    async def undrain(self) -> None: ...


class NodeDrainTrigger:
    """Turns events of Node ME into drains and undrains of COMPONENT, in the order they came (a cordon drains
    only ON_CORDON: the speaker's --bgp-drain-on-cordon)."""

    def __init__(self, me: str, component: Drainable, on_cordon: bool = True) -> None:
        self.me, self.component, self.on_cordon = me, component, on_cordon
        self.wanted: DrainCause | None = None  # what the last event of the Node asked for
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: asyncio.Lock = asyncio.Lock()

    def on_node(self, event: str, node: Mapping[str, Any]) -> None:
        """An event of any Node (only this node's own count); called on the speaker's loop."""
        if str((node.get("metadata") or {}).get("name", "")) != self.me:
            return
        facts = None if event == "DELETED" else NodeFacts.of(node)
        cause = drain_cause(facts, self.on_cordon)
        if cause == self.wanted:
            return
        action = decide(self.wanted is not None, facts, self.on_cordon)
        self.wanted = cause
        log.info("BGP: node %s: %s (%s)", self.me, action.value, cause.value if cause else "serving")
        task = asyncio.get_running_loop().create_task(self._do(action, cause))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _do(self, action: DrainAction, cause: DrainCause | None) -> None:
        async with self._queue:  # one at a time, in order: a cordon and an uncordon a moment later both land
            try:
                if cause is not None:  # a drain, or a drained node's cause changing
                    await self.component.drain(cause, final=False)
                elif action is DrainAction.UNDRAIN:
                    await self.component.undrain()
            except Exception:  # a defect must not end the trigger silently: the next event tries again
                log.exception("BGP: acting on node %s's %s failed", self.me, action.value)


def drained_condition(cause: DrainCause | None, old: Mapping[str, Any] | None,
                      leftover: StartDrain | None = None) -> dict[str, Any]:
    """BGPNodeStatus's Drained condition: True, with CAUSE, while the node's routes are drained or draining;
    OLD (the one last written) keeps its transition time while the reason stays; LEFTOVER: what the drained
    node did with the routes FRR still announced when it read FRR back (a new speaker)."""
    reason = REASONS[cause] if cause else BGPDrainReason.NOT_DRAINED
    since = str(old["lastTransitionTime"]) if old and old.get("reason") == reason.value else now_stamp()
    words = f"routes drained: {cause.value}" if cause else "announcing"
    if cause and leftover:
        words += f"; FRR read back: {leftover.value}"
    return condition(ConditionType.BGP_DRAINED, cause is not None, reason, words, since=since)


def drained_conditions(source: Any, written: Any) -> tuple[dict[str, Any], ...]:
    """The Drained condition for BGPNodeStatus when SOURCE (BGP mode's component: its `drained` and `leftover`)
    can drain; WRITTEN: the status last written (None, or an object with `conditions`)."""
    if not hasattr(source, "drained"):
        return ()
    old = next((c for c in (written.conditions if written else ())
                if c.get("type") == ConditionType.BGP_DRAINED.value), None)
    return (drained_condition(source.drained, old, source.leftover),)
