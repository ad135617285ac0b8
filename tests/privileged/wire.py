"""A veth pair in a network namespace of its own, entered by the test's thread: frames in on one end, out on the other.

`near` carries the program under test (its index, MAC); `far` is the asking host. A frame sent from `far` either comes
back to `far` (answered in the kernel) or reaches `near`'s ARP socket (handed on to user space): `outcome` says which.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from ironlb.speaker.fast.l2.packets import ETH_P_ARP, mac_bytes

CLONE_NEWNET = 0x40000000
PACKET_OUTGOING = 4
NEAR_MAC, FAR_MAC, OTHER_OWN_MAC = "02:00:00:00:01:0a", "02:00:00:00:01:0b", "02:00:00:00:01:0c"
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


@contextlib.contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run this thread in NETNS (sockets, interface lookups), and back afterwards whatever happens."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


@dataclass
class Wire:
    """The pair, and a packet socket on each end."""

    netns: str
    near_index: int
    near: socket.socket
    far: socket.socket

    def outcome(self, frame: bytes, timeout: float = 1.0) -> tuple[str, bytes]:
        """Send FRAME from the far end: ("answered", the reply) or ("passed", the frame as user space got it)."""
        self.far.send(frame)
        readable, _, _ = select.select([self.near, self.far], [], [], timeout)
        for sock, what in ((self.far, "answered"), (self.near, "passed")):
            if sock in readable:
                data, addr = sock.recvfrom(2048)
                if addr[2] != PACKET_OUTGOING:
                    return what, data
        return "lost", b""

    def quiet(self, timeout: float = 0.1) -> bool:
        """Nothing more arrives on either end within TIMEOUT (no second answer, no copy)."""
        readable, _, _ = select.select([self.near, self.far], [], [], timeout)
        for sock in readable:
            _, addr = sock.recvfrom(2048)
            if addr[2] != PACKET_OUTGOING:
                return False
        return True


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def wire(tag: str) -> Iterator[Wire]:
    """A fresh namespace with the veth pair near0/far0 up, this thread inside it; removed afterwards."""
    netns = f"ilb-{tag}-{os.getpid()}"
    _ip("netns", "add", netns)
    try:
        _ip("-n", netns, "link", "add", "name", "near0", "type", "veth", "peer", "name", "far0")
        _ip("-n", netns, "link", "set", "dev", "near0", "address", NEAR_MAC)
        _ip("-n", netns, "link", "set", "dev", "far0", "address", FAR_MAC)
        for dev in ("near0", "far0"):
            _ip("-n", netns, "link", "set", "dev", dev, "up")
        with inside(netns):
            near = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
            far = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
            try:
                near.bind(("near0", ETH_P_ARP))
                far.bind(("far0", ETH_P_ARP))
                yield Wire(netns, socket.if_nametoindex("near0"), near, far)
            finally:
                near.close()
                far.close()
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def near_mac() -> bytes:
    """The near end's MAC, as bytes."""
    return mac_bytes(NEAR_MAC)
