"""connprobe against a real pod server on the loopback: its events say which pod answered, long-lived
connections stay open on keep-alive, and a server's death shows as failed new connections and broken
long-lived ones."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from e2e.probes.connprobe import Failure, Kind
from e2e.testkit.connections import parse

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def podserver() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The lab's pod server named pod-a on a free loopback port; stopped afterwards."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "e2e.probes.podserver", "--name", "pod-a", "--port", str(port)],
                            cwd=REPO)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield proc, port
    finally:
        proc.kill()
        proc.wait()


def probe(port: int, duration: float) -> subprocess.Popen[str]:
    """connprobe at the loopback for DURATION seconds, its defaults otherwise but a timeout a loaded machine
    meets too (what is tested here is what the probe records, not how fast the loopback is)."""
    return subprocess.Popen([sys.executable, "-m", "e2e.probes.connprobe", "127.0.0.1", "--port", str(port),
                             "--duration", str(duration), "--timeout", "2"], stdout=subprocess.PIPE, text=True,
                            cwd=REPO)


def test_every_new_connection_is_answered_and_long_lived_ones_stay_open(
        podserver: tuple[subprocess.Popen[bytes], int]) -> None:
    _, port = podserver
    out, _ = probe(port, 1.0).communicate(timeout=10)
    rec = parse(out.splitlines())
    assert 45 <= len(rec.attempts) <= 51  # 50 a second
    assert {a.pod for a in rec.attempts} == {"pod-a"} and all(a.ok for a in rec.attempts)
    assert rec.opened == 4 and rec.breaks == ()  # ten requests each on one connection: keep-alive held


def test_a_dead_server_fails_new_connections_and_breaks_long_lived_ones(
        podserver: tuple[subprocess.Popen[bytes], int]) -> None:
    server, port = podserver
    prober = probe(port, 4.0)
    assert prober.stdout is not None
    head = opened_lines(prober.stdout, want=4, within=3.0)  # the kill comes once all long-lived ones answer
    killed_from = time.monotonic()
    server.kill()
    server.wait()
    killed_by = time.monotonic()
    rest, _ = prober.communicate(timeout=10)
    rec = parse(head + rest.splitlines())
    assert len(rec.breaks) == 4 and all(b.pod == "pod-a" and b.at > killed_from for b in rec.breaks)
    assert {b.failure for b in rec.breaks} <= {Failure.CLOSED, Failure.RESET}
    # Those in flight while the server died may end any way (reset, closed, or a timeout on a loaded
    # machine); every one started after it had died is refused.
    failed = [a for a in rec.attempts if not a.ok and a.start > killed_by]
    assert failed and all(a.failure is Failure.REFUSED for a in failed)
    assert all(a.ok for a in rec.attempts if a.end < killed_from)


def opened_lines(stdout: IO[str], want: int, within: float) -> list[str]:
    """The probe's event lines up to its WANT-th opened long-lived connection (at most WITHIN seconds)."""
    lines: list[str] = []
    deadline = time.monotonic() + within
    while sum(json.loads(line)["kind"] == Kind.OPEN.value for line in lines) < want:
        assert time.monotonic() < deadline, f"the probe opened fewer than {want} long-lived connections"
        line = stdout.readline()
        assert line, "the probe ended early"
        lines.append(line)
    return lines
