"""Keyed background tasks: stopping every one of them and waiting until they have stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, MutableMapping
from typing import Any


async def stop_all(tasks: MutableMapping[Hashable, asyncio.Task[Any]]) -> None:
    """Cancel every task in TASKS, forget them, and wait until each has ended."""
    stopping = list(tasks.values())
    tasks.clear()
    for task in stopping:
        task.cancel()
    await asyncio.gather(*stopping, return_exceptions=True)
