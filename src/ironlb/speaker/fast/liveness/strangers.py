"""Freshness of messages from nodes whose run we never proved by echo: non-neighbours on the ring (pure).

A neighbour's message is fresh because it echoes our run and is newer than any taken from it (membership.py).
A non-neighbour never hears us, so its messages (its RESTART with covers, FENCED, LEAVE, the notices it sends
every node) cannot echo our run. They are taken on two conditions instead:

- the message names the run the view has for its sender: a run its watchers proved by echo and announced
  (an ALIVE notice), or that the sender announced itself, as newer than the run the view had;
- its sequence is newer than that of any message taken from that run.

A recording of an earlier run names a retired run, refused; a recording of this run is not newer than the
last message taken from it, once one was. A sender whose state changes towards non-neighbours (fenced, back,
restarting, leaving) says so to every node, and says it again for a few rounds, so that the newest message
taken from it is the latest of its state changes and every earlier one is then a replay.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from ironlb.speaker.fast.liveness.membership import RETIRED_KEPT
from ironlb.speaker.fast.liveness.protocol import Heartbeat


class Taken(Enum):
    """Whether a non-neighbour's message is taken, and why not."""

    TAKEN = "taken"
    NO_RUN = "no-run"  # the view names no run of the sender's yet: nothing to check its message against
    OTHER_RUN = "other-run"  # not the run the view has for the sender: an earlier run's recording, or a later run
    RETIRED = "retired"  # a run the view has seen replaced: never taken again
    REPLAYED = "replayed"  # not newer than a message already taken from this run


@dataclass
class Strangers:
    """The newest message taken from each non-neighbour's current run, and the runs seen replaced."""

    newest: dict[str, tuple[int, int]] = field(default_factory=dict)  # node -> (its run, highest sequence taken)
    retired: dict[str, deque[int]] = field(default_factory=dict)  # node -> runs the view has seen replaced

    def run_changed(self, node: str, old: int, new: int) -> None:
        """The view's run for NODE went from OLD to NEW (0: none): OLD is never taken again."""
        if old and old != new:
            self.retired.setdefault(node, deque(maxlen=RETIRED_KEPT)).append(old)

    def is_retired(self, node: str, run: int) -> bool:
        """Has the view seen NODE's RUN replaced? (A notice naming it is a recording.)"""
        return run in self.retired.get(node, ())

    def take(self, msg: Heartbeat, view_run: int) -> Taken:
        """Take MSG from a non-neighbour, VIEW_RUN being the run the view has for its sender (0: none)?"""
        if self.is_retired(msg.node, msg.incarnation):
            return Taken.RETIRED
        if view_run == 0:
            return Taken.NO_RUN
        if msg.incarnation != view_run:
            return Taken.OTHER_RUN
        run, sequence = self.newest.get(msg.node, (0, -1))
        if run == view_run and msg.sequence <= sequence:
            return Taken.REPLAYED
        self.newest[msg.node] = (view_run, msg.sequence)
        return Taken.TAKEN

    def forget(self, node: str) -> None:
        """NODE left the Node list."""
        self.newest.pop(node, None)
        self.retired.pop(node, None)
