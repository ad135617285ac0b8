"""The heartbeat socket reads peers only: the kernel's socket filter, and the user-space check before crypto."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest

from ironlb.speaker.fast.l2 import bpf
from ironlb.speaker.fast.liveness import sourcefilter
from ironlb.speaker.fast.liveness.protocol import Decoded, Heartbeat, Kind, encode
from ironlb.speaker.fast.liveness.transport import Liveness
from tests.unit.speaker.fast.l2 import cbpf

KEY = b"k" * 32


def ipv4_header(src: str) -> bytes:
    """An IPv4 header from SRC (only the fields the filter reads matter)."""
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 60, 0, 0, 64, 17, 0, socket.inet_aton(src),
                       socket.inet_aton("192.0.2.1"))


def ipv6_header(src: str) -> bytes:
    """An IPv6 header from SRC."""
    return struct.pack("!IHBB16s16s", 6 << 28, 40, 17, 64, socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, "2001:db8::1"))


PEERS = ["192.0.2.11", "::ffff:192.0.2.12", "2001:db8::11", "2001:db8::12"]


@pytest.mark.parametrize(("header", "accepted"), [
    (ipv4_header("192.0.2.11"), True),
    (ipv4_header("192.0.2.12"), True),  # named IPv4-mapped: an IPv4 packet
    (ipv4_header("192.0.2.13"), False),
    (ipv6_header("2001:db8::11"), True),
    (ipv6_header("2001:db8::12"), True),
    (ipv6_header("2001:db8::13"), False),
    (ipv6_header("2001:db8:0:1::11"), False),  # one word differs
    (ipv6_header("::ffff:192.0.2.14"), False),
    (b"\x45", False),  # too short to hold a source address
])
def test_the_filter_accepts_peer_sources_only(header: bytes, accepted: bool) -> None:
    prog = sourcefilter.program(PEERS)
    assert prog is not None
    assert (cbpf.run(prog, b"\0" * 8 + b"payload", header) > 0) is accepted
    with_port = sourcefilter.program(PEERS, 7946)
    assert with_port is not None
    udp = struct.pack("!HHHH", 7946, 7946, 15, 0) + b"payload"
    assert (cbpf.run(with_port, udp, header) > 0) is accepted
    assert cbpf.run(with_port, struct.pack("!HHHH", 40000, 7946, 15, 0) + b"payload", header) == 0


def test_no_peers_accept_nothing_and_too_many_give_no_program() -> None:
    prog = sourcefilter.program([])
    assert prog is not None and cbpf.run(prog, b"x" * 20, ipv4_header("192.0.2.11")) == 0
    many = [f"2001:db8::{i:x}" for i in range(1, 500)]
    assert sourcefilter.program(many) is None  # past the kernel's limit: user space alone
    assert len(sourcefilter.program([f"198.18.{i // 250}.{i % 250}" for i in range(2000)]) or []) <= 4096


def _received(sock: socket.socket) -> int:
    got = 0
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        try:
            sock.recvfrom(2048)
            got += 1
        except BlockingIOError:
            time.sleep(0.01)
    return got


def test_the_kernel_drops_what_the_filter_refuses_and_swaps_it_atomically() -> None:
    """On a real dual-stack socket: from 127.0.0.2 only, then from 127.0.0.1 only; then from one port only."""
    rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    rx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    rx.bind(("::", 0))
    rx.setblocking(False)
    port = rx.getsockname()[1]
    senders = {}
    for src in ("127.0.0.1", "127.0.0.2"):
        senders[src] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        senders[src].bind((src, 0))
    try:
        for allowed in ("127.0.0.2", "127.0.0.1"):
            prog = sourcefilter.program([allowed])
            assert prog is not None
            bpf.attach(rx, prog)
            for src, tx in senders.items():
                for _ in range(3):
                    tx.sendto(b"x", ("127.0.0.1", port))
                assert _received(rx) == (3 if src == allowed else 0), (allowed, src)
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the allowed address, another port
        other.bind(("127.0.0.1", 0))
        senders["other"] = other
        prog = sourcefilter.program(["127.0.0.1"], senders["127.0.0.1"].getsockname()[1])
        assert prog is not None
        bpf.attach(rx, prog)
        for tx, expected in ((senders["127.0.0.1"], 2), (other, 0)):
            tx.sendto(b"x", ("127.0.0.1", port))
            tx.sendto(b"x", ("127.0.0.1", port))
            assert _received(rx) == expected
    finally:
        rx.close()
        for tx in senders.values():
            tx.close()


async def test_liveness_reads_peers_only_and_counts_the_rest_before_any_crypto() -> None:
    live = Liveness("a", KEY, 7946, lambda _: None)
    live.set_peers({"b": "192.0.2.12"}, {"b": {"192.0.2.22"}})
    assert live.sources == {"192.0.2.12", "192.0.2.22"}
    good = encode(Heartbeat(Kind.ALIVE, "b", 5, 1, 0), KEY)
    live.datagram_received(good, ("::ffff:198.51.100.9", 7946))
    live.datagram_received(b"junk", ("2001:db8::99", 7946))
    live.datagram_received(good, ("::ffff:192.0.2.12", 40000))  # a peer's address, not its speaker's port
    live.datagram_received(good, ("::ffff:192.0.2.22", 7946))
    assert live.counters.rejected == {Decoded.NOT_A_PEER.value: 3, Decoded.UNECHOED.value: 1}


async def test_liveness_attaches_the_filter_and_follows_the_peers() -> None:
    live = Liveness("a", KEY, 0, lambda _: None)
    await live.start("::")
    try:
        assert live.counters.source_filter and live.counters.filter_failures == 0
        live.set_peers({"b": "192.0.2.12"})
        live.set_peers({"b": "not an address"})  # refused: counted, and the old filter is gone
        assert not live.counters.source_filter and live.counters.filter_failures == 1
        live.set_peers({"b": "192.0.2.13"})
        assert live.counters.source_filter
    finally:
        await live.close()
    await asyncio.sleep(0)


def test_the_kernel_filter_reads_ipv6_sources_and_ports_too() -> None:
    rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    rx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    rx.bind(("::", 0))
    rx.setblocking(False)
    port = rx.getsockname()[1]
    good, other = (socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in range(2))
    try:
        good.bind(("::1", 0))
        other.bind(("::1", 0))
        prog = sourcefilter.program(["::1", "127.0.0.1"], good.getsockname()[1])
        assert prog is not None
        bpf.attach(rx, prog)
        for tx, expected in ((good, 2), (other, 0)):
            tx.sendto(b"x", ("::1", port))
            tx.sendto(b"x", ("::1", port))
            assert _received(rx) == expected
    finally:
        for s in (rx, good, other):
            s.close()
