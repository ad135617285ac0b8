"""HeldSocket: the fast plane's socket calls give the same results as socket.socket's, and keep the GIL."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from ironlb.speaker.fast.held import HeldSocket, sockaddr_in6


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two non-blocking dual-stack UDP sockets on loopback."""
    socks = []
    for _ in range(2):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setblocking(False)
        s.bind(("::", 0))
        socks.append(s)
    yield socks[0], socks[1]
    for s in socks:
        s.close()


def test_a_datagram_and_its_source_read_as_socket_recvfrom_gives_them(pair: tuple[socket.socket, ...]) -> None:
    a, b = pair
    port_a, port_b = a.getsockname()[1], b.getsockname()[1]
    held_a, held_b = HeldSocket(a), HeldSocket(b)
    for host in ("::1", "::ffff:127.0.0.1"):  # IPv6, and IPv4 as the dual-stack socket sees it
        assert held_a.sendto(b"beat", (host, port_b)) == 4
        socket.socket.sendto(a, b"plain", (host, port_b))
        got = [held_b.recvfrom(2048)]
        got.append(socket.socket.recvfrom(b, 2048))
        assert got[0] == (b"beat", (host, port_a, 0, 0))
        assert got[0][1] == got[1][1]  # the same source tuple as the standard library's


def test_nothing_to_read_and_nowhere_to_send_raise_as_the_socket_module_does(pair: tuple[socket.socket, ...]) -> None:
    held = HeldSocket(pair[0])
    with pytest.raises(BlockingIOError):
        held.recvfrom(2048)
    with pytest.raises(OSError) as err:
        held.send(b"x")  # an unconnected UDP socket has no destination
    with pytest.raises(OSError) as std:
        pair[0].send(b"x")
    assert err.value.errno == std.value.errno


def test_a_blocking_socket_is_refused() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s, pytest.raises(ValueError, match="non-blocking"):
        HeldSocket(s)


def test_the_sockaddr_is_the_kernels_layout() -> None:
    raw = sockaddr_in6("2001:db8::1", 7946)
    assert len(raw) == 28 and int.from_bytes(raw[:2], sys.byteorder) == socket.AF_INET6
    assert raw[2:4] == (7946).to_bytes(2, "big") and raw[8:24] == socket.inet_pton(socket.AF_INET6, "2001:db8::1")


def test_held_calls_keep_the_gil(pair: tuple[socket.socket, ...]) -> None:
    # With a long switch interval another thread runs only when this one gives the GIL away itself:
    # a held call never does (the standard socket calls do around every system call, and a sleep does).
    a, b = pair
    target = ("::1", b.getsockname()[1])
    held, held_b = HeldSocket(a), HeldSocket(b)
    ticks, stop = [0], threading.Event()

    def count() -> None:
        while not stop.is_set():
            ticks[0] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.5)
    thread = threading.Thread(target=count)
    try:
        thread.start()
        before = ticks[0]
        for _ in range(200):
            held.sendto(b"beat", target)
        for _ in range(200):
            held_b.recvfrom(2048)
        after_held = ticks[0]
        time.sleep(0.05)  # the control: the other thread was ready to run all along
        after_sleep = ticks[0]
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
    assert after_held == before
    assert after_sleep > after_held
