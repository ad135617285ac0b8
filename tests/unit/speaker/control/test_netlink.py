"""The rtnetlink reader on crafted bytes: headers, attributes, nested link info, errors, interrupted dumps."""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable

import pytest

from ironlb.speaker.control import netlink as nl
from ironlb.speaker.control.netlink import DumpInterrupted, Message, RtNetlink, attributes, decode, split

PORT = 4242
NLA_F_NESTED = 0x8000


def rtattr(kind: int, payload: bytes) -> bytes:
    """One attribute, padded to 4 bytes."""
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (nl.align(len(raw)) - len(raw))


def nlmsg(kind: int, payload: bytes, seq: int = 0, flags: int = 0, pid: int = PORT) -> bytes:
    """One netlink message, padded to 4 bytes."""
    raw = struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, pid) + payload
    return raw + b"\0" * (nl.align(len(raw)) - len(raw))


def link_payload(index: int, name: str, flags: int = 0x1, *attrs: bytes) -> bytes:
    return struct.pack("=BxHiII", 0, 1, index, flags, 0) + rtattr(3, name.encode() + b"\0") + b"".join(attrs)


def addr_payload(index: int, family: int, address: str, scope: int = 0) -> bytes:
    raw = socket.inet_pton(family, address)
    return struct.pack("=BBBBI", family, 24 if family == socket.AF_INET else 64, 0, scope, index) + rtattr(1, raw)


def error(code: int, seq: int) -> bytes:
    return nlmsg(nl.NLMSG_ERROR, struct.pack("=i", -code) + b"\0" * 16, seq)


def done(seq: int, code: int = 0, flags: int = nl.NLM_F_MULTI) -> bytes:
    return nlmsg(nl.NLMSG_DONE, struct.pack("=i", -code), seq, flags)


def only(data: bytes) -> Message:
    (header, payload), = split(data)
    message = decode(header, payload)
    assert message is not None
    return message


def test_a_link_with_a_nested_link_info_and_odd_lengths() -> None:
    info = rtattr(1, b"veth\0") + rtattr(4, b"bridge\0")
    data = nlmsg(nl.RTM_NEWLINK, link_payload(
        7, "eth0", 0x10003,
        rtattr(1, bytes.fromhex("02000000000a")),        # 6 bytes: padded to 8
        rtattr(10, struct.pack("=I", 3)),
        rtattr(18 | NLA_F_NESTED, rtattr(2, b"ignored") + info),
        rtattr(16, b"\x06"), rtattr(33, b"\x01"),
        rtattr(999, b"unknown attributes are skipped"),
    ))
    msg = only(data)
    assert (msg["event"], msg["index"], msg["flags"], msg["family"]) == ("RTM_NEWLINK", 7, 0x10003, 0)
    assert msg.get_attr("IFLA_IFNAME") == "eth0" and msg.get_attr("IFLA_ADDRESS") == "02:00:00:00:00:0a"
    assert msg.get_attr("IFLA_MASTER") == 3 and msg.get_attr("IFLA_OPERSTATE") == "UP"
    assert msg.get_attr("IFLA_CARRIER") == 1 and msg.get_attr("IFLA_MTU") is None
    linkinfo = msg.get_attr("IFLA_LINKINFO")
    assert linkinfo.get_attr("IFLA_INFO_KIND") == "veth" and linkinfo.get_attr("IFLA_INFO_SLAVE_KIND") == "bridge"


def test_the_last_attribute_may_go_unpadded_and_the_first_of_a_repeated_one_wins() -> None:
    unpadded = struct.pack("=HH", 5, 3) + b"x"  # IFLA_IFNAME "x" without its NUL or padding
    raw = memoryview(rtattr(3, b"first\0") + unpadded)
    assert attributes(raw, nl.LINK_ATTRS) == {"IFLA_IFNAME": "first"}
    assert attributes(memoryview(unpadded), nl.LINK_ATTRS) == {"IFLA_IFNAME": "x"}
    assert attributes(memoryview(b""), nl.LINK_ATTRS) == {}


def test_other_link_layer_addresses_keep_their_length() -> None:
    raw = memoryview(rtattr(1, bytes([192, 0, 2, 1])) + rtattr(2, b""))
    assert attributes(raw, nl.LINK_ATTRS) == {"IFLA_ADDRESS": "c0:00:02:01", "IFLA_BROADCAST": ""}


@pytest.mark.parametrize(("raw", "why"), [
    (struct.pack("=HH", 12, 3) + b"eth0", "bad rtattr length 12"),       # runs past the data
    (struct.pack("=HH", 2, 3) + b"\0\0", "bad rtattr length 2"),         # shorter than its own header
    (rtattr(3, b"eth0\0") + b"\x08\0", "truncated rtattr: 2 bytes"),      # a stray half header at the end
    (rtattr(10, b"\x01\x00"), "bad IFLA_MASTER: 2 bytes"),                # a u32 of two bytes
    (rtattr(33, b""), "bad IFLA_CARRIER: 0 bytes"),
    (rtattr(18, struct.pack("=HH", 9, 1) + b"ve"), "bad rtattr length 9"),  # the nested one is checked too
], ids=["past-end", "too-short", "stray-bytes", "short-u32", "empty-u8", "nested"])
def test_malformed_attributes_are_refused(raw: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        attributes(memoryview(raw), nl.LINK_ATTRS)


@pytest.mark.parametrize(("data", "why"), [
    (nlmsg(nl.RTM_NEWLINK, link_payload(1, "lo"))[:10], "truncated netlink header: 10 bytes"),
    (nlmsg(nl.RTM_NEWLINK, link_payload(1, "lo"))[:-4], "bad netlink message length 40"),
    (struct.pack("=IHHII", 8, nl.RTM_NEWLINK, 0, 0, 0), "bad netlink message length 8"),
], ids=["header", "past-end", "too-short"])
def test_malformed_messages_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        list(split(data))


def test_a_header_shorter_than_its_ifinfomsg_is_refused() -> None:
    with pytest.raises(ValueError, match="truncated message header: 4 of 16 bytes"):
        only(nlmsg(nl.RTM_NEWLINK, b"\0" * 4))


def test_addresses_as_text_with_their_family_scope_and_index() -> None:
    v4 = only(nlmsg(nl.RTM_NEWADDR, addr_payload(2, socket.AF_INET, "192.0.2.11") + rtattr(3, b"eth0\0")))
    v6 = only(nlmsg(nl.RTM_DELADDR, addr_payload(2, socket.AF_INET6, "fe80::2", scope=253)))
    assert (v4["event"], v4["family"], v4["index"], v4["prefixlen"]) == ("RTM_NEWADDR", 2, 2, 24)
    assert v4.get_attr("IFA_ADDRESS") == "192.0.2.11" and v4.get_attr("IFA_LABEL") == "eth0"
    assert (v6["event"], v6["family"], v6["scope"], v6.get_attr("IFA_ADDRESS")) == ("RTM_DELADDR", 10, 253, "fe80::2")


def test_other_message_types_are_not_decoded() -> None:
    (header, payload), = split(nlmsg(24, b"\0" * 12))  # RTM_NEWROUTE
    assert decode(header, payload) is None


class ScriptedKernel:
    """The kernel end of a netlink socket: each dump request is answered by the next script, given its sequence."""

    def __init__(self, *scripts: Callable[[int], list[bytes]]) -> None:
        self.scripts, self.queue, self.requests = list(scripts), list[bytes](), list[tuple[int, int]]()
        self.closed = False

    def sendto(self, data: bytes, address: tuple[int, int]) -> int:
        _, kind, flags, seq, _ = struct.unpack_from("=IHHII", data)
        assert address == (0, 0) and flags == nl.NLM_F_REQUEST | nl.NLM_F_DUMP
        self.requests.append((kind, seq))
        self.queue.extend(self.scripts.pop(0)(seq))
        return len(data)

    def recv_into(self, buf: bytearray, size: int = 0, flags: int = 0) -> int:
        datagram = self.queue[0] if flags & socket.MSG_PEEK else self.queue.pop(0)
        n = min(len(datagram), size or len(buf))
        buf[:n] = datagram[:n]
        return len(datagram) if flags & socket.MSG_TRUNC else n

    def recv(self, size: int) -> bytes:
        return self.queue.pop(0)[:size]

    def getsockname(self) -> tuple[int, int]:
        return PORT, 0

    def close(self) -> None:
        self.closed = True


def reader(*scripts: Callable[[int], list[bytes]]) -> RtNetlink:
    return RtNetlink(sock=ScriptedKernel(*scripts))  # type: ignore[arg-type]


def links(*names: str, flags: int = nl.NLM_F_MULTI) -> Callable[[int], list[bytes]]:
    """A dump answered in one datagram per link, then NLMSG_DONE."""
    def script(seq: int) -> list[bytes]:
        parts = [nlmsg(nl.RTM_NEWLINK, link_payload(i, n), seq, flags) for i, n in enumerate(names, 1)]
        return [*parts, done(seq, flags=flags)]
    return script


def test_a_multi_part_dump_ends_at_done_and_skips_strays() -> None:
    def script(seq: int) -> list[bytes]:
        stale = nlmsg(nl.RTM_NEWLINK, link_payload(9, "stale"), seq - 1, nl.NLM_F_MULTI)  # an abandoned dump's tail
        event = nlmsg(nl.RTM_NEWLINK, link_payload(8, "event"), 0, 0, pid=0)
        return [stale + event, *links("lo", "eth0")(seq)]
    with reader(script) as netlink:
        assert [m.get_attr("IFLA_IFNAME") for m in netlink.links()] == ["lo", "eth0"]


def test_an_interrupted_dump_is_retried() -> None:
    kernel = ScriptedKernel(links("lo", "old", flags=nl.NLM_F_MULTI | nl.NLM_F_DUMP_INTR), links("lo", "new"))
    with RtNetlink(sock=kernel) as netlink:  # type: ignore[arg-type]
        assert [m.get_attr("IFLA_IFNAME") for m in netlink.links()] == ["lo", "new"]
        assert [kind for kind, _ in kernel.requests] == [nl.RTM_GETLINK] * 2
        assert len({seq for _, seq in kernel.requests}) == 2  # a fresh sequence number each time


def test_a_dump_interrupted_every_time_gives_up() -> None:
    scripts = [links("lo", flags=nl.NLM_F_MULTI | nl.NLM_F_DUMP_INTR)] * nl.DUMP_ATTEMPTS
    with reader(*scripts) as netlink, pytest.raises(DumpInterrupted) as raised:
        netlink.links()
    assert raised.value.errno == errno.EINTR


def test_an_error_reply_raises_its_errno() -> None:
    with reader(lambda seq: [error(errno.EPERM, seq)]) as netlink, pytest.raises(PermissionError) as raised:
        netlink.addresses()
    assert raised.value.errno == errno.EPERM


def test_an_error_at_the_end_of_a_dump_raises_its_errno() -> None:
    with reader(lambda seq: [links("lo")(seq)[0], done(seq, errno.ENOBUFS)]) as netlink, \
            pytest.raises(OSError) as raised:
        netlink.links()
    assert raised.value.errno == errno.ENOBUFS


def test_a_truncated_error_reply_is_refused() -> None:
    with reader(lambda seq: [nlmsg(nl.NLMSG_ERROR, b"\xff\xff", seq)]) as netlink, \
            pytest.raises(ValueError, match="truncated NLMSG_ERROR"):
        netlink.links()


def test_an_acknowledgement_ends_a_request() -> None:
    with reader(lambda seq: [error(0, seq)]) as netlink:
        assert netlink.links() == []


def test_a_datagram_larger_than_the_buffer_is_read_whole() -> None:
    filler = rtattr(999, b"\0" * 40_000) * 2  # skipped, but they must not cut the message (e.g. many VFs)
    mac = rtattr(1, bytes.fromhex("02000000000b"))

    def script(seq: int) -> list[bytes]:
        return [nlmsg(nl.RTM_NEWLINK, link_payload(1, "eth0", 0x1, filler, mac), seq, nl.NLM_F_MULTI), done(seq)]
    with reader(script) as netlink:
        (msg,) = netlink.links()
    assert msg.get_attr("IFLA_ADDRESS") == "02:00:00:00:00:0b" and len(filler) > nl.RECV_SIZE


def test_events_are_link_and_address_messages_only() -> None:
    datagram = (nlmsg(nl.RTM_DELLINK, link_payload(3, "gone"), pid=0) + nlmsg(24, b"\0" * 12, pid=0)
                + nlmsg(nl.RTM_NEWADDR, addr_payload(2, socket.AF_INET6, "2001:db8::1"), pid=0))
    kernel = ScriptedKernel()
    kernel.queue.append(datagram)
    with RtNetlink(sock=kernel) as netlink:  # type: ignore[arg-type]
        assert [m["event"] for m in netlink.events()] == ["RTM_DELLINK", "RTM_NEWADDR"]
    assert kernel.closed
