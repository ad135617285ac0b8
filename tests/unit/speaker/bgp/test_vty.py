"""The vty client against a scripted daemon on a Unix socket: each command's reply and status, a refusal, a
daemon that goes silent or away, and the reconnection after it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ironlb.speaker.bgp.vty import BATCH_END, BATCH_START, CONFIGURE, Vty, VtyRefused, VtyStatus, VtyUnavailable

Answer = Callable[[str], tuple[int, str] | None]  # a command -> (status, text), or None: say nothing


class Daemon:
    """A vty socket answering as ANSWER says; records every command it read."""

    def __init__(self, answer: Answer) -> None:
        self.answer, self.commands = answer, []
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                command = (await reader.readuntil(b"\0"))[:-1].decode()
                self.commands.append(command)
                said = self.answer(command)
                if said is None:
                    continue
                status, text = said
                writer.write(text.encode() + b"\0\0\0" + bytes([status]))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def always(status: int = 0, text: str = "") -> Answer:
    return lambda _: (status, text)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Daemon, str]]:
    daemon = Daemon(always())
    path = str(tmp_path / "bgpd.vty")
    server = await asyncio.start_unix_server(daemon.serve, path)
    try:
        yield daemon, path
    finally:
        server.close()


async def test_a_show_returns_the_daemons_text(daemon: tuple[Daemon, str]) -> None:
    fake, path = daemon
    fake.answer = lambda command: (0, f"you said {command}")
    vty = Vty(path)
    assert await vty.show("show running-config") == "you said show running-config"
    assert fake.commands == ["enable", "show running-config"]
    vty.close()


async def test_a_batch_runs_between_configure_and_end(daemon: tuple[Daemon, str]) -> None:
    fake, path = daemon
    vty = Vty(path)
    await vty.configure([f"network 2001:db8::{i:x}/128" for i in range(3)])
    assert fake.commands == ["enable", CONFIGURE, BATCH_START, "network 2001:db8::0/128", "network 2001:db8::1/128",
                             "network 2001:db8::2/128", BATCH_END, "end"]
    vty.close()


async def test_a_refused_command_ends_the_batch_and_says_why(daemon: tuple[Daemon, str]) -> None:
    fake, path = daemon
    fake.answer = lambda command: (2, "% Unknown command") if command == "nonsense" else (0, "")
    vty = Vty(path)
    with pytest.raises(VtyRefused) as refused:
        await vty.configure(["router bgp 64513", "nonsense", "never sent"])
    assert refused.value.status is VtyStatus.NO_MATCH and refused.value.command == "nonsense"
    assert "never sent" not in fake.commands and fake.commands[-1] == "end"
    vty.close()


async def test_a_silent_daemon_is_unavailable_and_the_next_command_connects_again(
        daemon: tuple[Daemon, str]) -> None:
    fake, path = daemon
    fake.answer = lambda command: None if command == "show silence" else (0, "")
    vty = Vty(path, timeout_s=0.2)
    with pytest.raises(VtyUnavailable):
        await vty.show("show silence")
    assert await vty.show("show version") == ""
    assert fake.connections == 2
    vty.close()


async def test_no_socket_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(VtyUnavailable):
        await Vty(str(tmp_path / "none.vty"), timeout_s=0.2).show("show version")
