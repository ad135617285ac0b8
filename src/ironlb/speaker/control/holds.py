"""Peers held for a restart, released as soon as their node stops answering.

A speaker that restarts asks its peers to answer for its IPs with its MACs, because its node goes on
forwarding their traffic (docs/design.md, "A speaker that restarts"). That is right only while the node is
up: a graceful node shutdown stops the speaker first, and the node goes down a moment later. So each held
peer's host is probed the way a dead node's is before steering (`steer.confirm`): once it answers no TCP
connect to kube-proxy's health port, its hold ends and its IPs are taken over as a dead node's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from ironlb.speaker.control.fastproc import FastProcess
from ironlb.speaker.control.steer.confirm import DeathConfirmer, host_answers

log = logging.getLogger(__name__)
CHECK_EVERY_S = 0.25  # how often a held peer's host is probed


class HoldWatch:
    """Probes every held peer's host; releases the ones that do not answer."""

    def __init__(self, fast: FastProcess, addresses: Callable[[], Mapping[str, str]], port: int,
                 timeout: float = 0.25, check: Callable[[str, int, float], Awaitable[bool]] = host_answers) -> None:
        self.fast, self.addresses = fast, addresses
        self.confirmer = DeathConfirmer(self._checked, port, timeout, interval=CHECK_EVERY_S, check=check)

    def follow(self, held: frozenset[str]) -> None:
        """Probe exactly the HELD peers from now on (the fast plane reported a change)."""
        known = self.addresses() if held else {}
        self.confirmer.watch({node: known[node] for node in held if node in known})

    def _checked(self) -> None:
        for node in self.confirmer.confirmed:
            self.fast.release(node)

    async def close(self) -> None:
        """Stop probing."""
        await self.confirmer.close()
