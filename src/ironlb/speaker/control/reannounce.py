"""Optional periodic re-announce: one gratuitous ARP / unsolicited NA per owned IP every interval.

Takeover bursts suffice for hosts that listen; some switches and hosts age out entries they have
not heard about (the kernel's own probes are answered, but a switch's MAC table may still expire
while the VIP is quiet). Off by default: on a large segment it is broadcast traffic for nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

Sleep = Callable[[float], Awaitable[None]]


class Refreshable(Protocol):
    """Something that sends one gratuitous burst for all it owns: the Announcer, or the Speaker (which
    hands the call to its fast plane's process)."""

    def reannounce(self) -> None:
        """Send the burst."""


async def reannounce_every(announcer: Refreshable, interval: float, sleep: Sleep = asyncio.sleep) -> None:
    """Until cancelled, refresh every owned (IP, interface) each INTERVAL seconds; 0 or less: never."""
    if interval <= 0:
        return
    while True:
        await sleep(interval)
        # Only what the responders own right now: a fenced or released IP is not in there.
        announcer.reannounce()
