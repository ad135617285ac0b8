"""The runs of each node that the view has seen replaced: a message or notice naming one is a recording (pure).

A node's run is replaced when the view learns a new one (the node said so, restarting). Whatever names a
replaced run afterwards (a notice about it, a recording of its messages) is refused by name, whatever its
life or sequence: the view remembers the last RETIRED_KEPT runs of each node, as Membership does.

Messages from non-neighbours need no rule of their own while every peer is probed each probe cycle (probes.py):
they echo this node's run, and the speaker's one table checks them as a neighbour's (ringmode.py). A ring without
those probes would need one, anchored on the run the view has for the sender
(docs/design.md, "The ring on live nodes").
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ironlb.speaker.fast.liveness.membership import RETIRED_KEPT


@dataclass
class Strangers:
    """The runs the view has seen replaced, per node."""

    retired: dict[str, deque[int]] = field(default_factory=dict)  # node -> runs the view has seen replaced

    def run_changed(self, node: str, old: int, new: int) -> None:
        """The view's run for NODE went from OLD to NEW (0: none): OLD is never taken again."""
        if old and old != new:
            self.retired.setdefault(node, deque(maxlen=RETIRED_KEPT)).append(old)

    def is_retired(self, node: str, run: int) -> bool:
        """Has the view seen NODE's RUN replaced? (A notice naming it is a recording.)"""
        return run in self.retired.get(node, ())
