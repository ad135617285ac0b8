"""Packet I/O behind a small interface: raw AF_PACKET sockets in production (tests/fakeio.py stands in for them)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from typing import Protocol

from ironlb.speaker.fast.held import HeldSocket
from ironlb.speaker.fast.l2 import bpf
from ironlb.speaker.fast.l2.packets import ETH_P_ARP, ETH_P_IPV6

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP, PACKET_DROP_MEMBERSHIP = 1, 2
PACKET_MR_MULTICAST = 0
PACKET_STATISTICS = 6
PACKET_OTHERHOST, PACKET_OUTGOING = 3, 4
# A deeper receive queue than the default ~200 KiB, so a burst (a flood, a busy loop) is absorbed
# rather than dropped; whatever the kernel still drops is counted by DropCounter.
RCVBUF_BYTES = 4 << 20
SO_RCVBUFFORCE = 33
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

    def set_filter(self, program: list[bpf.Instruction]) -> bool:
        """Replace the kernel filter (atomically); False if the kernel refused it and all frames now pass."""

    def leave(self, mac: bytes) -> None:
        """Stop accepting a multicast MAC."""

    def close(self) -> None:
        """Release the socket."""


class DropCounter:
    """Frames the kernel dropped on our packet sockets (queue full), by interface; outlives the sockets.

    PACKET_STATISTICS resets on every read, so each read is folded into a running total here. Thread-safe:
    a metrics scrape may read while the packet loop opens and closes sockets.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, int] = {}
        self._live: set[RawPacketIO] = set()

    def add(self, ifname: str, dropped: int) -> None:
        """Fold DROPPED more frames into IFNAME's total."""
        if dropped:
            with self._lock:
                self._totals[ifname] = self._totals.get(ifname, 0) + dropped

    def track(self, io: RawPacketIO, live: bool) -> None:
        """Start (or stop) polling a socket's statistics."""
        with self._lock:
            (self._live.add if live else self._live.discard)(io)

    def totals(self) -> dict[str, int]:
        """Interface -> frames dropped so far (reads every live socket's statistics first)."""
        with self._lock:
            live = list(self._live)
        for io in live:
            io.collect_drops()
        with self._lock:
            return dict(self._totals)


def read_drops(sock: socket.socket) -> int:
    """Frames the kernel dropped on a packet socket since the last read (0 if it cannot say)."""
    try:
        _, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    except OSError:
        return 0
    return int(drops)


class RawPacketIO:
    """AF_PACKET socket bound to one interface, BPF-filtered, driven by the asyncio loop (no thread)."""

    def __init__(self, ifname: str, ifindex: int, protocol: str, loop: asyncio.AbstractEventLoop,
                 drops: DropCounter | None = None) -> None:
        self.ifname, self.ifindex, self.protocol, self.loop = ifname, ifindex, protocol, loop
        self.drops = drops
        ethertype, program = (ETH_P_ARP, bpf.ARP_PROGRAM) if protocol == "arp" else (ETH_P_IPV6, bpf.NDP_PROGRAM)
        self._pass_all = program
        # Protocol 0 until the filter is attached and the socket bound: nothing unfiltered slips in.
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            self.sock.setblocking(False)
            _deepen_queue(self.sock)
            bpf.attach(self.sock, program)
            self.sock.bind((ifname, ethertype))
        except OSError:  # e.g. the interface is already gone: no half-made socket is left open
            self.sock.close()
            raise
        self._held = HeldSocket(self.sock, ifname)  # receives and replies keep the GIL (fast/held.py)
        self._on_frame: FrameHandler | None = None
        if drops is not None:
            drops.track(self, True)

    def collect_drops(self) -> None:
        """Fold the kernel's drop count since the last read into the DropCounter."""
        if self.drops is not None and self.sock.fileno() >= 0:
            self.drops.add(self.ifname, read_drops(self.sock))

    def start(self, on_frame: FrameHandler) -> None:
        """Begin delivering received frames to `on_frame`."""
        self._on_frame = on_frame
        self.loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(READ_BATCH):
            try:
                frame, addr = self._held.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if addr[2] == PACKET_OUTGOING or addr[2] == PACKET_OTHERHOST:  # ours, or to another host's MAC
                continue
            if self._on_frame:
                self._on_frame(frame)

    def set_filter(self, program: list[bpf.Instruction]) -> bool:
        """Replace the kernel filter: SO_ATTACH_FILTER swaps it atomically. False if the kernel refused it:
        then the socket passes all ARP (or NS/NA), so no owned IP goes unanswered behind a stale filter."""
        try:
            bpf.attach(self.sock, program)
            return True
        except OSError:
            pass
        # The swap charges the old and the new program to the socket at once (optmem_max): from the small
        # pass-all program, a long one may still fit.
        try:
            bpf.attach(self.sock, self._pass_all)
        except OSError:
            return False  # the old filter stays: nothing narrower could be put in its place
        if program is self._pass_all:
            return True
        try:
            bpf.attach(self.sock, program)
        except OSError:
            return False
        return True

    def send(self, frame: bytes) -> None:
        """Send one frame (drops it if the interface went away)."""
        with contextlib.suppress(BlockingIOError, OSError):
            self._held.send(frame)

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
        if self.drops is not None:
            self.collect_drops()  # the last drops count too
            self.drops.track(self, False)
        self.sock.close()


def _deepen_queue(sock: socket.socket) -> None:
    # SO_RCVBUFFORCE passes rmem_max with CAP_NET_ADMIN (the speaker has it); otherwise take what is allowed.
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
    except OSError:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)

