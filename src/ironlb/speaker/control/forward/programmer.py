"""Applies the rendered nftables table with `nft -f -` (one transaction), only when it changed,
and again every `resync` seconds so a table flushed by someone else comes back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ironlb.speaker.control.forward.nft import TABLE

log = logging.getLogger(__name__)


def removal(table: str) -> str:
    """A script that removes TABLE whether or not it exists (create, then delete)."""
    return f"table inet {table}\ndelete table inet {table}\n"


class NftablesProgrammer:
    """Keeps one of the kernel's tables (`inet ironlb` unless told) equal to the latest script it was given."""

    def __init__(self, nft: str = "nft", resync: float = 30.0,
                 on_result: Callable[[bool, str], None] | None = None, table: str = TABLE) -> None:
        self.nft, self.resync, self.on_result = nft, resync, on_result
        self.applied: str | None = None
        self.last_error = ""
        self.remove = removal(table)
        self._wanted = self.remove
        self._kick = asyncio.Event()

    def update(self, script: str) -> None:
        """Make SCRIPT the wanted state; it is applied soon, in the background."""
        if script != self._wanted:
            self._wanted = script
            self._kick.set()

    async def apply(self, script: str) -> bool:
        """Run SCRIPT through nft now; True on success."""
        try:
            proc = await asyncio.create_subprocess_exec(
                self.nft, "-f", "-", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            _, err = await proc.communicate(script.encode())
            ok, message = proc.returncode == 0, err.decode(errors="replace").strip()
        except OSError as exc:
            ok, message = False, f"cannot run {self.nft}: {exc}"
        if ok:
            self.applied, self.last_error = script, ""
        elif message != self.last_error:
            log.error("nftables update failed: %s", message)
            self.last_error = message
        if self.on_result is not None:
            self.on_result(ok, message)
        return ok

    async def run(self) -> None:
        """Apply what is wanted whenever it changes, and every `resync` seconds; remove the table on exit."""
        try:
            while True:
                self._kick.clear()  # before applying: an update during the apply is not lost
                await self.apply(self._wanted)
                retry = self.resync if self.applied == self._wanted else min(self.resync, 2.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), timeout=retry)
        finally:
            await asyncio.shield(self.apply(self.remove))
