"""A small rtnetlink reader, standard library only: dump links and addresses, follow their events.

The speaker used pyroute2 for this; importing it cost memory out of all proportion to the handful of messages
read here (docs/design.md, "Measurements behind the code").
Messages keep the surface interfaces.py reads: `msg["index"]`, `msg["flags"]`, `msg["event"]`, `msg.get_attr(name)`.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP_INTR, NLM_F_DUMP = 0x1, 0x2, 0x10, 0x300
RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR = 0x1, 0x10, 0x100
LINK_AND_ADDRESS_GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR
EVENTS = {RTM_NEWLINK: "RTM_NEWLINK", RTM_DELLINK: "RTM_DELLINK", RTM_NEWADDR: "RTM_NEWADDR",
          RTM_DELADDR: "RTM_DELADDR"}
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
SO_RCVBUFFORCE = 33  # not in the socket module; lets CAP_NET_ADMIN exceed net.core.rmem_max
RECV_SIZE = 64 * 1024  # the kernel fills dump datagrams up to 32 KiB; a larger one is peeked and read whole
EVENT_RCVBUF = 4 * 1024 * 1024  # a burst of link and address events (a CNI creating pods) must not overflow at once
DUMP_ATTEMPTS = 10  # a dump interrupted by a change this many times in a row gives up (the caller retries later)
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")  # RFC 2863, as pyroute2

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_RTATTR = struct.Struct("=HH")  # length, type
_IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, device type, index, flags, change mask
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
_ERRNO = struct.Struct("=i")
_U32, _U8 = struct.Struct("=I"), struct.Struct("=B")


class DumpInterrupted(OSError):
    """The kernel flagged every attempt at a dump as inconsistent (NLM_F_DUMP_INTR): links kept changing."""


def align(n: int) -> int:
    """N rounded up to netlink's 4-byte alignment."""
    return (n + 3) & ~3


@dataclass(frozen=True, slots=True)
class Attrs:
    """Decoded attributes by name; the first of a repeated one wins (as pyroute2's get_attr)."""

    attrs: Mapping[str, Any] = field(default_factory=dict)

    def get_attr(self, name: str, default: Any = None) -> Any:
        """The attribute NAME (e.g. "IFLA_IFNAME"), or DEFAULT."""
        return self.attrs.get(name, default)


@dataclass(frozen=True, slots=True)
class Message(Attrs):
    """A link or address message: its event ("RTM_NEWLINK"...), header fields and attributes."""

    event: str = ""
    fields: Mapping[str, int] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.event if key == "event" else self.fields[key]


@dataclass(frozen=True, slots=True)
class Header:
    """An nlmsghdr."""

    length: int
    type: int
    flags: int
    seq: int
    pid: int


def split(data: bytes) -> Iterator[tuple[Header, memoryview]]:
    """The messages of one datagram with their payloads; ValueError if a length runs past the data."""
    view, offset = memoryview(data), 0
    while offset < len(view):
        if len(view) - offset < _NLMSGHDR.size:
            raise ValueError(f"truncated netlink header: {len(view) - offset} bytes")
        header = Header(*_NLMSGHDR.unpack_from(view, offset))
        if header.length < _NLMSGHDR.size or header.length > len(view) - offset:
            raise ValueError(f"bad netlink message length {header.length} ({len(view) - offset} bytes left)")
        yield header, view[offset + _NLMSGHDR.size:offset + header.length]
        offset += align(header.length)


def _text(raw: memoryview) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode("utf-8", "replace")


def _hex(raw: memoryview) -> str:
    return ":".join(f"{b:02x}" for b in raw)  # a MAC as aa:bb:..; other link-layer lengths keep their own length


def _ip(raw: memoryview) -> str:
    family = {4: socket.AF_INET, 16: socket.AF_INET6}.get(len(raw))
    return socket.inet_ntop(family, bytes(raw)) if family else _hex(raw)


def _u32(raw: memoryview) -> int:
    return _U32.unpack(raw)[0]


def _u8(raw: memoryview) -> int:
    return _U8.unpack(raw[:1])[0]


def _operstate(raw: memoryview) -> str:
    state = _u8(raw)
    return OPERSTATES[state] if state < len(OPERSTATES) else str(state)


Decoder = Callable[[memoryview], Any]
LINKINFO_ATTRS: dict[int, tuple[str, Decoder]] = {1: ("IFLA_INFO_KIND", _text), 4: ("IFLA_INFO_SLAVE_KIND", _text)}


def _linkinfo(raw: memoryview) -> Attrs:
    return Attrs(attributes(raw, LINKINFO_ATTRS))


LINK_ATTRS: dict[int, tuple[str, Decoder]] = {
    1: ("IFLA_ADDRESS", _hex), 2: ("IFLA_BROADCAST", _hex), 3: ("IFLA_IFNAME", _text), 4: ("IFLA_MTU", _u32),
    10: ("IFLA_MASTER", _u32), 16: ("IFLA_OPERSTATE", _operstate), 18: ("IFLA_LINKINFO", _linkinfo),
    33: ("IFLA_CARRIER", _u8),
}
ADDR_ATTRS: dict[int, tuple[str, Decoder]] = {
    1: ("IFA_ADDRESS", _ip), 2: ("IFA_LOCAL", _ip), 3: ("IFA_LABEL", _text), 8: ("IFA_FLAGS", _u32),
}


def attributes(raw: memoryview, known: Mapping[int, tuple[str, Decoder]]) -> dict[str, Any]:
    """The KNOWN rtattrs in RAW, decoded; others skipped. ValueError if one is truncated."""
    out: dict[str, Any] = {}
    offset = 0
    while len(raw) - offset >= _RTATTR.size:
        length, kind = _RTATTR.unpack_from(raw, offset)
        if length < _RTATTR.size or length > len(raw) - offset:
            raise ValueError(f"bad rtattr length {length} ({len(raw) - offset} bytes left)")
        if (entry := known.get(kind & NLA_TYPE_MASK)) and entry[0] not in out:
            name, decode = entry
            try:
                out[name] = decode(raw[offset + _RTATTR.size:offset + length])
            except struct.error as e:  # a fixed-size attribute of the wrong size
                raise ValueError(f"bad {name}: {length - _RTATTR.size} bytes") from e
        offset += align(length)  # the last attribute may go unpadded: the loop ends either way
    if 0 < len(raw) - offset < _RTATTR.size:
        raise ValueError(f"truncated rtattr: {len(raw) - offset} bytes")
    return out


def _header_fields(payload: memoryview, fmt: struct.Struct, names: tuple[str, ...]) -> dict[str, int]:
    if len(payload) < fmt.size:
        raise ValueError(f"truncated message header: {len(payload)} of {fmt.size} bytes")
    return dict(zip(names, fmt.unpack_from(payload), strict=True))


def decode(header: Header, payload: memoryview) -> Message | None:
    """A link or address message as a Message; None for any other type."""
    event = EVENTS.get(header.type)
    if event is None:
        return None
    if header.type in (RTM_NEWLINK, RTM_DELLINK):
        fields = _header_fields(payload, _IFINFOMSG, ("family", "ifi_type", "index", "flags", "change"))
        return Message(attributes(payload[_IFINFOMSG.size:], LINK_ATTRS), event, fields)
    fields = _header_fields(payload, _IFADDRMSG, ("family", "prefixlen", "flags", "scope", "index"))
    return Message(attributes(payload[_IFADDRMSG.size:], ADDR_ATTRS), event, fields)


def raise_if_error(header: Header, payload: memoryview) -> None:
    """OSError with the errno an NLMSG_ERROR or NLMSG_DONE carries (0 is an acknowledgement, or a clean end)."""
    if len(payload) < _ERRNO.size:
        if header.type == NLMSG_ERROR:
            raise ValueError(f"truncated NLMSG_ERROR: {len(payload)} bytes")
        return  # an old kernel's NLMSG_DONE carries no error code
    code = -_ERRNO.unpack_from(payload)[0]
    if code > 0:
        raise OSError(code, os.strerror(code))


class RtNetlink:
    """An rtnetlink socket: dumps of links and addresses and, bound to GROUPS, their events. Use it with `with`.

    SOCK: an already bound socket to use instead (tests hand in a scripted one)."""

    def __init__(self, groups: int = 0, rcvbuf: int | None = None, sock: socket.socket | None = None) -> None:
        self._sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            if rcvbuf:
                self._set_rcvbuf(rcvbuf)
            if sock is None:
                self._sock.bind((0, groups))
            self._port = self._sock.getsockname()[0]
        except BaseException:
            self._sock.close()
            raise
        self._seq = 0
        self._buf = bytearray(RECV_SIZE)

    @classmethod
    def events_socket(cls) -> RtNetlink:
        """A socket subscribed to link and address events (IPv4 and IPv6), with room for bursts."""
        return cls(LINK_AND_ADDRESS_GROUPS, EVENT_RCVBUF)

    def __enter__(self) -> RtNetlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def fileno(self) -> int:
        """The socket's descriptor (for select)."""
        return self._sock.fileno()

    def links(self) -> list[Message]:
        """Every link (RTM_GETLINK dump)."""
        return self._dump(RTM_GETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))

    def addresses(self) -> list[Message]:
        """Every address of every family (RTM_GETADDR dump)."""
        return self._dump(RTM_GETADDR, _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))

    def events(self) -> list[Message]:
        """The link and address messages of the next datagram (blocks); OSError(ENOBUFS) if some were lost."""
        return [m for header, payload in split(self._recv()) if (m := decode(header, payload))]

    def _set_rcvbuf(self, size: int) -> None:
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except PermissionError:  # without CAP_NET_ADMIN: as much as net.core.rmem_max allows
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def _recv(self) -> bytes:
        # Peeking with MSG_TRUNC gives the datagram's real size: one larger than the buffer is read whole, not cut.
        size = self._sock.recv_into(self._buf, len(self._buf), socket.MSG_PEEK | socket.MSG_TRUNC)
        if size > len(self._buf):
            return self._sock.recv(size)
        size = self._sock.recv_into(self._buf)
        return bytes(self._buf[:size])

    def _dump(self, kind: int, body: bytes) -> list[Message]:
        for _ in range(DUMP_ATTEMPTS):
            messages, interrupted = self._dump_once(kind, body)
            if not interrupted:
                return messages
        raise DumpInterrupted(errno.EINTR, f"netlink dump interrupted {DUMP_ATTEMPTS} times in a row")

    def _dump_once(self, kind: int, body: bytes) -> tuple[list[Message], bool]:
        self._seq = self._seq % 0xFFFFFFFF + 1
        seq = self._seq
        request = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body
        self._sock.sendto(request, (0, 0))
        messages: list[Message] = []
        interrupted = False
        while True:
            for header, payload in split(self._recv()):
                if header.seq != seq or header.pid != self._port:
                    continue  # the rest of an earlier, abandoned dump, or an event
                interrupted |= bool(header.flags & NLM_F_DUMP_INTR)
                if header.type in (NLMSG_DONE, NLMSG_ERROR):
                    raise_if_error(header, payload)
                    return messages, interrupted
                if message := decode(header, payload):
                    messages.append(message)
