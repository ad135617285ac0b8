"""The channel's boundary: a frame that is not a message this end handles is refused, said once, counted."""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import pickle
import socket
from collections.abc import AsyncIterator

import pytest

from ironlb.speaker.fast.messages import FROM_FAST, TO_FAST, Alive, Fence, Refusal
from ironlb.speaker.fast.wire import Channel, Refused, decode, encode, pair


class RunsCode:
    """A pickle that would call a function when loaded (what a hostile frame would carry)."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return os.getpid, ()


@pytest.mark.parametrize(("frame", "reason"), [
    (b"not a pickle", Refusal.GARBLED),
    (encode(Alive(frozenset({"n1"})))[:-4], Refusal.GARBLED),  # cut short
    (pickle.dumps(RunsCode()), Refusal.FOREIGN_CLASS),
    (pickle.dumps(collections.OrderedDict()), Refusal.FOREIGN_CLASS),
    (pickle.dumps(("alive", frozenset({"n1"}))), Refusal.UNHANDLED),  # the old wire's tuples are no message
], ids=["not-a-pickle", "cut-short", "runs-code", "foreign-class", "a-tuple"])
def test_what_is_not_a_message_is_refused_with_its_reason(frame: bytes, reason: Refusal) -> None:
    with pytest.raises(Refused) as refused:
        decode(frame, FROM_FAST)
    assert refused.value.reason is reason


def test_a_message_for_the_other_end_is_refused() -> None:
    frame = encode(Alive(frozenset({"n1"})))
    assert decode(frame, FROM_FAST) == Alive(frozenset({"n1"}))
    with pytest.raises(Refused) as refused:
        decode(frame, TO_FAST)
    assert refused.value.reason is Refusal.UNHANDLED


@pytest.fixture
async def ends() -> AsyncIterator[tuple[Channel, socket.socket, list[Alive]]]:
    """A channel that handles Alive only, and the raw socket at its other end."""
    ours, theirs = pair()
    received: list[Alive] = []
    channel = Channel(ours, asyncio.get_running_loop(), {Alive: received.append}, lambda: None)
    yield channel, theirs, received
    channel.close()
    theirs.close()


async def test_refused_frames_are_counted_said_once_and_the_channel_reads_on(
        ends: tuple[Channel, socket.socket, list[Alive]], caplog: pytest.LogCaptureFixture) -> None:
    channel, theirs, received = ends
    small, large = Alive(frozenset({"n3"})), Alive(frozenset(f"node-{i}" for i in range(100)))
    channel._buffer = bytearray(len(encode(small)))  # so that LARGE is longer: the kernel cuts it, we refuse it
    for frame in (b"garbage", encode(Alive(frozenset({"n1"}))), b"more garbage", pickle.dumps(RunsCode()),
                  encode(Fence()), encode(large), encode(small)):
        theirs.send(frame)
    with caplog.at_level(logging.ERROR):
        async with asyncio.timeout(5):
            while len(received) < 2:
                await asyncio.sleep(0.01)
    assert received == [Alive(frozenset({"n1"})), small]
    assert channel.refused == {Refusal.GARBLED: 2, Refusal.FOREIGN_CLASS: 1, Refusal.UNHANDLED: 1,
                               Refusal.OVERSIZED: 1}
    said = [r.getMessage() for r in caplog.records if r.name == "ironlb.speaker.fast.wire"]
    assert len(said) == 4 and all(text.startswith("refused a frame from the other process") for text in said)
