"""HoldWatch: a held peer whose host stops answering is released; one that answers is left held."""

from __future__ import annotations

import asyncio

from ironlb.speaker.control.fastproc import Heard
from ironlb.speaker.control.holds import HoldWatch


class FakeFast:
    """What HoldWatch reads and calls of the fast plane's handle."""

    def __init__(self, held: set[str]) -> None:
        self.membership = Heard()
        self.membership.update(frozenset(held), frozenset(), frozenset(held))
        self.released: list[str] = []

    def release(self, node: str) -> None:
        self.released.append(node)
        held = self.membership.held() - {node}
        self.membership.update(held, frozenset(), held)


async def test_a_held_peer_whose_host_stops_answering_is_released() -> None:
    up = {"192.0.2.12": True, "192.0.2.13": True}

    async def check(address: str, port: int, timeout: float) -> bool:
        return up[address]

    fast = FakeFast({"n2", "n3"})
    watch = HoldWatch(fast, lambda: {"n2": "192.0.2.12", "n3": "192.0.2.13"}, 10256, check=check)  # type: ignore[arg-type]
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.6)
        assert fast.released == []  # both answer: both stay held
        up["192.0.2.13"] = False
        async with asyncio.timeout(2):
            while fast.released != ["n3"]:
                await asyncio.sleep(0.02)
        assert fast.membership.held() == {"n2"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watch.close()
