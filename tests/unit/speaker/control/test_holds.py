"""HoldWatch: a held peer whose host stops answering is released; one that answers is left held."""

from __future__ import annotations

import asyncio

from ironlb.speaker.control.fastproc import FastProcess, Heard
from ironlb.speaker.control.holds import HoldWatch
from ironlb.speaker.fast import messages


class FakeFast:
    """What HoldWatch reads and calls of the fast plane's handle."""

    def __init__(self, held: set[str]) -> None:
        self.membership = Heard()
        self.membership.update(frozenset(held), frozenset(), frozenset(held))
        self.released: list[str] = []
        self.watch: HoldWatch | None = None

    def release(self, node: str) -> None:
        self.released.append(node)
        held = self.membership.held() - {node}
        self.membership.update(held, frozenset(), held)
        assert self.watch is not None
        self.watch.follow(held)  # as FastProcess reports the held set's change


async def test_a_held_peer_whose_host_stops_answering_is_released() -> None:
    up = {"192.0.2.12": True, "192.0.2.13": True}

    async def check(address: str, port: int, timeout: float) -> bool:
        return up[address]

    fast = FakeFast({"n2", "n3"})
    watch = HoldWatch(fast, lambda: {"n2": "192.0.2.12", "n3": "192.0.2.13"}, 10256, check=check)  # type: ignore[arg-type]
    fast.watch = watch
    watch.follow(fast.membership.held())
    try:
        await asyncio.sleep(0.6)
        assert fast.released == []  # both answer: both stay held
        up["192.0.2.13"] = False
        async with asyncio.timeout(2):
            while fast.released != ["n3"]:
                await asyncio.sleep(0.02)
        assert fast.membership.held() == {"n2"}
    finally:
        await watch.close()


def test_the_fast_planes_reports_reach_the_watch_only_when_the_held_set_changes() -> None:
    fast = FastProcess("n1", b"k" * 32, 7946, lambda _: None, lambda *_: None)
    seen: list[frozenset[str]] = []
    fast.on_held = seen.append
    for held in ({"n2"}, {"n2"}, set(), set()):
        fast.handlers[messages.Members](messages.Members(frozenset({"n2", "n3"}), frozenset({"n3"}), frozenset(held)))
    assert seen == [{"n2"}, set()]
