"""connprobe against a real pod server on the loopback: its events say which pod answered, long-lived
connections stay open on keep-alive, and a server's death shows as failed new connections and broken
long-lived ones."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.probes.connprobe import Failure
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
    prober = probe(port, 1.5)
    time.sleep(0.7)
    died = time.monotonic()
    server.kill()
    server.wait()
    out, _ = prober.communicate(timeout=10)
    rec = parse(out.splitlines())
    assert len(rec.breaks) == 4 and all(b.pod == "pod-a" and b.at > died for b in rec.breaks)
    assert {b.failure for b in rec.breaks} <= {Failure.CLOSED, Failure.RESET}
    # One in flight when the server died may end any way (reset, closed, or a timeout on a loaded machine);
    # every one started after it is refused.
    failed = [a for a in rec.attempts if not a.ok and a.start > died]
    assert failed and all(a.failure is Failure.REFUSED for a in failed)
    assert all(a.ok for a in rec.attempts if a.end < died)
