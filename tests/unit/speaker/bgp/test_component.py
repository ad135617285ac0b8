"""BGP mode's component between a restarted speaker and the FRR it finds: nothing is applied before the feed's
first update, so what FRR holds (its predecessor's sessions) is not deleted; FRR gone, the whole state again."""

from __future__ import annotations

import asyncio
import contextlib

from ironlb.core.bgp.model import Announcement, Desired, Peer
from ironlb.speaker.bgp.component import BgpComponent, FrrState
from ironlb.speaker.bgp.status import Session
from ironlb.speaker.bgp.vty import VtyUnavailable

HELD = Desired.of([Peer("rtr", 64513, 64512, address="198.18.39.1")], [],
                  [Announcement("198.18.39.200/32", frozenset({"rtr"}))])


class Driver:
    """FRR as a driver sees it: what it holds (None until read back) and every state it was asked for."""

    def __init__(self) -> None:
        self.applied: Desired | None = None
        self.asked: list[Desired] = []
        self.gone = False

    async def apply(self, desired: Desired, touched: set[str] | None = None) -> list[object]:
        self.asked.append(desired)
        self.applied = desired
        return []

    async def sessions(self) -> list[Session]:
        if self.gone:
            self.applied = None
            raise VtyUnavailable("bgpd.vty: connection refused")
        return []

    def close(self) -> None:
        pass


async def running(component: BgpComponent, seconds: float) -> None:
    """Run the component's loop for SECONDS."""
    task = asyncio.create_task(component.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_restarted_speaker_applies_nothing_before_its_first_update() -> None:
    component = BgpComponent("/nonexistent", poll_s=0.01)
    component.driver = driver = Driver()  # type: ignore[assignment]
    await running(component, 0.1)
    assert driver.asked == []  # its empty start state would have deleted the predecessor's peers
    await component.update(HELD)
    assert driver.asked == [HELD] and component.frr is FrrState.IN_SYNC


async def test_frr_gone_after_the_first_update_gets_the_whole_state_again() -> None:
    component = BgpComponent("/nonexistent", poll_s=0.01)
    component.driver = driver = Driver()  # type: ignore[assignment]
    await component.update(HELD)
    driver.gone = True
    await running(component, 0.05)
    assert component.frr is FrrState.UNREACHABLE
    driver.gone = False
    await running(component, 0.05)
    assert driver.asked[-1] == HELD and len(driver.asked) >= 2 and component.frr is FrrState.IN_SYNC
