"""Fixtures of the fast plane's tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from ironlb.speaker.fast.child import Child


@pytest.fixture
def child() -> Iterator[Child]:
    """A fast plane's process object on its own loop, not started; the control plane's end is left unread."""
    loop = asyncio.new_event_loop()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    made = Child(ours, loop)
    try:
        yield made
    finally:
        made.channel.close()
        theirs.close()
        loop.close()
