"""RawPacketIO on real packet sockets: the kernel takes the longest filters and refuses a longer one, and a socket's
drops are read from PACKET_STATISTICS into totals."""

from __future__ import annotations

import asyncio
import socket

import pytest

from ironlb.speaker.fast.l2 import bpf
from ironlb.speaker.fast.l2.io import DropCounter, RawPacketIO, read_drops

pytestmark = pytest.mark.privileged
V4 = [f"198.51.{i // 256}.{i % 256}" for i in range(bpf.MAX_FILTERED_IPS)]


def test_the_kernel_takes_the_longest_filters_and_a_refused_one_passes_everything() -> None:
    loop = asyncio.new_event_loop()
    io = RawPacketIO("lo", socket.if_nametoindex("lo"), "arp", loop)
    try:
        assert io.set_filter(bpf.arp_program(V4))
        assert io.set_filter(bpf.arp_program(V4[1:]))  # a swap of two long ones (via pass-all if need be)
        assert not io.set_filter([(bpf.RET, 0, 0, 0)] * (bpf.MAX_INSNS + 1))  # over the limit: refused
    finally:
        io.close()
        loop.close()


def test_a_real_packet_socket_reports_and_untracks_on_close() -> None:
    probe = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    assert read_drops(probe) == 0
    probe.close()
    assert read_drops(probe) == 0  # a closed socket cannot say: 0, not an exception
    counter = DropCounter()
    loop = asyncio.new_event_loop()
    try:
        io = RawPacketIO("lo", socket.if_nametoindex("lo"), "arp", loop, counter)
        assert io.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 1 << 20  # the deeper queue
        assert counter.totals() == {}
        io.close()
        assert counter._live == set()
    finally:
        loop.close()

