"""Packet I/O behind a small interface: raw AF_PACKET sockets in production, a fake in unit tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import Protocol

from ironlb.speaker.l2 import bpf
from ironlb.speaker.l2.packets import ETH_P_ARP, ETH_P_IPV6

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP, PACKET_DROP_MEMBERSHIP = 1, 2
PACKET_MR_MULTICAST = 0
PACKET_OUTGOING = 4
FrameHandler = Callable[[bytes], None]
# Frames read per wake-up: a flood on one socket must not starve the loop (heartbeats, other
# interfaces); the loop calls back at once while more are queued.
READ_BATCH = 64


class PacketIO(Protocol):
    """Send and receive Ethernet frames of one protocol on one interface."""

    def start(self, on_frame: FrameHandler) -> None:
        """Begin delivering received frames to `on_frame`."""

    def send(self, frame: bytes) -> None:
        """Send one frame."""

    def join(self, mac: bytes) -> None:
        """Accept frames sent to a multicast MAC."""

    def set_filter(self, program: list[bpf.Instruction]) -> None:
        """Replace the kernel filter (atomically)."""

    def leave(self, mac: bytes) -> None:
        """Stop accepting a multicast MAC."""

    def close(self) -> None:
        """Release the socket."""


class RawPacketIO:
    """AF_PACKET socket bound to one interface, BPF-filtered, driven by the asyncio loop (no thread)."""

    def __init__(self, ifname: str, ifindex: int, protocol: str, loop: asyncio.AbstractEventLoop) -> None:
        self.ifname, self.ifindex, self.protocol, self.loop = ifname, ifindex, protocol, loop
        ethertype, program = (ETH_P_ARP, bpf.ARP_PROGRAM) if protocol == "arp" else (ETH_P_IPV6, bpf.NDP_PROGRAM)
        # Protocol 0 until the filter is attached and the socket bound: nothing unfiltered slips in.
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            self.sock.setblocking(False)
            bpf.attach(self.sock, program)
            self.sock.bind((ifname, ethertype))
        except OSError:  # e.g. the interface is already gone: no half-made socket is left open
            self.sock.close()
            raise
        self._on_frame: FrameHandler | None = None

    def start(self, on_frame: FrameHandler) -> None:
        """Begin delivering received frames to `on_frame`."""
        self._on_frame = on_frame
        self.loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(READ_BATCH):
            try:
                frame, addr = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if addr[2] == PACKET_OUTGOING:  # our own transmissions
                continue
            if self._on_frame:
                self._on_frame(frame)

    def set_filter(self, program: list[bpf.Instruction]) -> None:
        """Replace the kernel filter: SO_ATTACH_FILTER swaps it atomically."""
        with contextlib.suppress(OSError):
            bpf.attach(self.sock, program)

    def send(self, frame: bytes) -> None:
        """Send one frame (drops it if the interface went away)."""
        with contextlib.suppress(BlockingIOError, OSError):
            self.sock.send(frame)

    def _membership(self, option: int, mac: bytes) -> None:
        mreq = struct.pack("iHH8s", self.ifindex, PACKET_MR_MULTICAST, 6, mac)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(SOL_PACKET, option, mreq)

    def join(self, mac: bytes) -> None:
        """Accept frames to a multicast MAC (the NIC filters them otherwise)."""
        self._membership(PACKET_ADD_MEMBERSHIP, mac)

    def leave(self, mac: bytes) -> None:
        """Stop accepting a multicast MAC."""
        self._membership(PACKET_DROP_MEMBERSHIP, mac)

    def close(self) -> None:
        """Release the socket."""
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


class FakePacketIO:
    """In-memory PacketIO for unit tests: records sent frames, lets tests inject received ones."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.joined: set[bytes] = set()
        self.filter: list[bpf.Instruction] | None = None
        self.closed = False
        self._on_frame: FrameHandler | None = None

    def start(self, on_frame: FrameHandler) -> None:
        """Remember the frame handler."""
        self._on_frame = on_frame

    def inject(self, frame: bytes) -> None:
        """Deliver a frame as if received."""
        assert self._on_frame is not None
        self._on_frame(frame)

    def send(self, frame: bytes) -> None:
        """Record a frame."""
        self.sent.append(frame)

    def set_filter(self, program: list[bpf.Instruction]) -> None:
        """Record the filter."""
        self.filter = program

    def join(self, mac: bytes) -> None:
        """Record a multicast join."""
        self.joined.add(mac)

    def leave(self, mac: bytes) -> None:
        """Record a multicast leave."""
        self.joined.discard(mac)

    def close(self) -> None:
        """Mark closed."""
        self.closed = True
