"""An asyncio client of an FRR daemon's vty socket, speaking as vtysh does (vtysh/vtysh.c, vtysh_client_run).

A command goes out NUL-terminated; the reply is the daemon's text followed by three NULs and a status byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from enum import Enum

log = logging.getLogger("ironlb.speaker.bgp")

REPLY_END = b"\0\0\0"
CONFIGURE = "configure terminal"
BATCH_START, BATCH_END = "XFRR_start_configuration", "XFRR_end_configuration"


class VtyStatus(Enum):
    """FRR's command status codes (lib/command.h) that a refused command returns."""

    SUCCESS = 0
    WARNING = 1
    NO_MATCH = 2
    AMBIGUOUS = 3
    INCOMPLETE = 4
    TOO_MANY_ARGS = 5
    NOTHING_TO_DO = 6
    CONFIG_FAILED = 13
    NOT_MY_INSTANCE = 14
    NO_LEVEL_UP = 15
    NO_DAEMON = 16
    OTHER = -1

    @staticmethod
    def of(code: int) -> VtyStatus:
        """The status for a code byte (OTHER for one this client does not know)."""
        try:
            return VtyStatus(code)
        except ValueError:
            return VtyStatus.OTHER


class VtyRefused(Exception):
    """The daemon refused a command: which one, its status and FRR's text (for people, not for decisions)."""

    def __init__(self, command: str, status: VtyStatus, text: str) -> None:
        super().__init__(f"{command!r}: {status.name}: {text.strip()}")
        self.command, self.status, self.text = command, status, text


class VtyUnavailable(Exception):
    """The daemon's socket cannot be reached, closed, or did not answer in time."""


class Vty:
    """One connection to one daemon's vty socket; it reconnects on the next command after a failure."""

    def __init__(self, path: str, timeout_s: float = 5.0) -> None:
        self.path, self.timeout_s = path, timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.path, limit=1 << 24), self.timeout_s)
        except (TimeoutError, OSError) as e:
            raise VtyUnavailable(f"{self.path}: {e}") from e
        await self._exchange("enable")

    def close(self) -> None:
        """Drop the connection (the next command connects again)."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def _exchange(self, command: str) -> tuple[VtyStatus, str]:
        assert self._reader is not None and self._writer is not None
        try:
            self._writer.write(command.encode() + b"\0")
            await self._writer.drain()
            # Each read bounded on its own; a timeout scope, not wait_for: that wraps each read in a task of its
            # own, two per command of a batch of thousands.
            async with asyncio.timeout(self.timeout_s):
                data = await self._reader.readuntil(REPLY_END)
            async with asyncio.timeout(self.timeout_s):
                status = await self._reader.readexactly(1)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            self.close()
            raise VtyUnavailable(f"{self.path}: {command!r}: {e!r}") from e
        return VtyStatus.of(status[0]), data[:-len(REPLY_END)].decode(errors="replace")

    async def _run(self, command: str) -> str:
        if self._writer is None:
            await self._connect()
        status, text = await self._exchange(command)
        if status is not VtyStatus.SUCCESS:
            raise VtyRefused(command, status, text)
        return text

    async def show(self, command: str) -> str:
        """The output of a show command."""
        async with self._lock:
            return await self._run(command)

    async def configure(self, commands: Iterable[str]) -> None:
        """Run COMMANDS as one batch from `configure terminal` to `end`; the first refusal ends it and raises."""
        async with self._lock:
            await self._run(CONFIGURE)
            try:
                # As vtysh reads a config file: the northbound changes (prefix-lists, route-maps) of the whole
                # batch are checked and committed once at the end, not one commit per command.
                await self._run(BATCH_START)
                for command in commands:
                    await self._run(command)
                await self._run(BATCH_END)
            finally:
                with contextlib.suppress(VtyUnavailable, VtyRefused):
                    await self._run("end")
