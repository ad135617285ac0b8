"""What the router sees: its kernel routing table over rtnetlink (when a prefix's route leaves it), and the BGP
UPDATE messages that reach its interface (when the node's withdraw arrives)."""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import threading
import time

from tests.privileged.wire import inside

RTMGRP_IPV4_ROUTE = 0x40
RTM_DELROUTE = 25
RTA_DST = 1
ETH_P_ALL, PACKET_HOST, BGP_UPDATE = 3, 0, 2


class RouteWatch:
    """A netlink socket in NETNS subscribed to IPv4 route changes."""

    def __init__(self, netns: str) -> None:
        with inside(netns):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            self.sock.bind((0, RTMGRP_IPV4_ROUTE))

    def drain(self) -> None:
        """Forget the notices so far."""
        while select.select([self.sock], [], [], 0)[0]:
            self.sock.recv(1 << 16)

    def wait_deleted(self, prefix: str, timeout: float = 5.0) -> float | None:
        """The monotonic time the kernel reported PREFIX's route deleted, or None within TIMEOUT."""
        net = ipaddress.ip_network(prefix)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self.sock], [], [], left)[0]:
                break
            data, now = self.sock.recv(1 << 16), time.monotonic()
            if any(d == net for d in _deleted(data)):
                return now
        return None

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def _deleted(data: bytes) -> list[ipaddress.IPv4Network]:
    out, off = [], 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if kind == RTM_DELROUTE:
            dst_len = data[off + 17]
            dst = "0.0.0.0"
            attr = off + 16 + 12
            while attr + 4 <= off + length:
                alen, atype = struct.unpack_from("=HH", data, attr)
                if alen < 4:
                    break
                if atype == RTA_DST:
                    dst = socket.inet_ntoa(data[attr + 4:attr + 8])
                attr += (alen + 3) & ~3
            out.append(ipaddress.ip_network(f"{dst}/{dst_len}"))
        off += (length + 3) & ~3
    return out


class UpdateWatch:
    """A packet socket on the router's interface: the monotonic times BGP UPDATEs arrived, in a thread."""

    def __init__(self, netns: str, dev: str) -> None:
        with inside(netns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.bind((dev, ETH_P_ALL))
        self.sock.settimeout(0.1)
        self.times: list[float] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                frame, addr = self.sock.recvfrom(1 << 16)
            except TimeoutError:
                continue
            if addr[2] == PACKET_HOST and _is_bgp_update(frame[14:]):
                self.times.append(time.monotonic())

    def first_after(self, start: float, timeout: float = 2.0) -> float | None:
        """The first UPDATE's arrival after START, waiting up to TIMEOUT for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            later = [t for t in self.times if t >= start]
            if later:
                return later[0]
            time.sleep(0.005)
        return None

    def close(self) -> None:
        """Stop the thread and close the socket."""
        self.stopping.set()
        self.thread.join()
        self.sock.close()


def _is_bgp_update(ip: bytes) -> bool:
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_TCP:
        return False
    ihl = (ip[0] & 15) * 4
    payload = ip[ihl + (ip[ihl + 12] >> 4) * 4:]
    return len(payload) >= 19 and payload[18] == BGP_UPDATE
