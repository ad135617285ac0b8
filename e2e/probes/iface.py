"""What a probe needs to know of its own interface: its MAC, IPv4 address and IPv6 link-local address."""

from __future__ import annotations

import fcntl
import socket
import struct

from ironlb.speaker.fast.l2 import packets as pk

SIOCGIFADDR = 0x8915


def mac(iface: str) -> bytes:
    """The interface's MAC address."""
    with open(f"/sys/class/net/{iface}/address") as fh:
        return pk.mac_bytes(fh.read().strip())


def ipv4(iface: str) -> str:
    """The interface's (first) IPv4 address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", iface.encode()[:15]))
    return socket.inet_ntoa(packed[20:24])


def link_local(iface: str) -> str:
    """The interface's IPv6 link-local address; exits the program if it has none."""
    with open("/proc/net/if_inet6") as fh:
        for line in fh:
            parts = line.split()
            if parts[5] == iface and parts[0].startswith("fe80"):
                return ":".join(parts[0][i:i + 4] for i in range(0, 32, 4))
    raise SystemExit(f"{iface} has no IPv6 link-local address")
