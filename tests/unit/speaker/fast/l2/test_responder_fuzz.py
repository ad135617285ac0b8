"""The ARP and NDP parsers and the responder under hostile frames (hypothesis): truncated, oversized,
VLAN-tagged, option-laden or mutated frames never raise and never get a reply for an IP we do not own."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from e2e.probes import asker
from ironlb.speaker.fast.l2 import packets as pk
from ironlb.speaker.fast.l2.responder import Responder, Verdict
from tests.fakeio import FakePacketIO

OURS = pk.mac_bytes("02:00:00:00:00:01")
OWNED = frozenset({"203.0.113.10", "2001:db8:ffff::5"})
IPV4 = st.sampled_from(["203.0.113.10", "203.0.113.11", "0.0.0.0", "255.255.255.255", "192.0.2.100"])
IPV6 = st.sampled_from(["2001:db8:ffff::5", "2001:db8:ffff::6", "::", "fe80::99", "ff02::1"])
MACS = st.sampled_from([OURS, pk.BROADCAST, b"\x00" * 6, pk.mac_bytes("02:00:00:00:00:99")]) | st.binary(
    min_size=6, max_size=6)


@st.composite
def arp_frames(draw: st.DrawFn) -> bytes:
    """A well-formed ARP frame with arbitrary fields."""
    op = draw(st.sampled_from([pk.ARP_REQUEST, pk.ARP_REQUEST, pk.ARP_REPLY]) | st.integers(0, 0xFFFF))
    return pk.build_arp(op, draw(MACS), draw(MACS), draw(IPV4), draw(MACS), draw(IPV4))


@st.composite
def ndp_frames(draw: st.DrawFn) -> bytes:
    """An IPv6 ICMPv6 frame shaped like NS/NA, with arbitrary options (zero, odd, overlong lengths)."""
    kind = draw(st.sampled_from([pk.NDP_SOLICIT] * 4 + [pk.NDP_ADVERT, 133, 134, 137, 0, 255]))
    code = draw(st.sampled_from([0, 0, 0, 1]))
    target = ipaddress.IPv6Address(draw(IPV6)).packed
    icmp = struct.pack("!BBHI16s", kind, code, 0, draw(st.integers(0, 2**32 - 1)), target)
    for _ in range(draw(st.integers(0, 4))):
        length = draw(st.integers(0, 4))
        body = draw(st.binary(min_size=0, max_size=max(0, length * 8 - 2) + 4))
        icmp += bytes([draw(st.integers(0, 255)), length]) + body
    frame = pk.icmpv6_frame(draw(MACS), draw(MACS), draw(IPV6), draw(IPV6), icmp)
    if draw(st.integers(0, 4)) == 0:  # a hop limit other than 255 (forwarded: not from the link)
        frame = frame[:21] + bytes([draw(st.integers(0, 254))]) + frame[22:]
    return frame


def vlan_tag(frame: bytes, vid: int) -> bytes:
    """FRAME with an 802.1Q tag after the MACs."""
    return frame[:12] + struct.pack("!HH", 0x8100, vid) + frame[12:]


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """Any frame a LAN can deliver: valid, cut short, padded, tagged, mutated, or noise."""
    base = draw(arp_frames() | ndp_frames() | st.binary(max_size=200))
    how = draw(st.sampled_from(["as-is", "as-is", "truncated", "oversized", "vlan", "mutated"]))
    if how == "truncated":
        return base[:draw(st.integers(0, max(0, len(base) - 1)))]
    if how == "oversized":
        return base + draw(st.binary(min_size=1, max_size=1600))
    if how == "vlan":
        return vlan_tag(base, draw(st.integers(0, 4095)))
    if how == "mutated" and base:
        i = draw(st.integers(0, len(base) - 1))
        return base[:i] + bytes([draw(st.integers(0, 255))]) + base[i + 1:]
    return base


def replied_for(frame: bytes) -> str:
    """The IP a reply we sent vouches for."""
    arp = asker.parse_arp(frame)
    if arp is not None:
        return arp.sender_ip
    ndp = pk.parse_ndp(frame)
    assert ndp is not None and ndp.type == pk.NDP_ADVERT, frame.hex()
    return str(ipaddress.IPv6Address(ndp.target))


@settings(max_examples=1500, deadline=None)
@given(hostile())
def test_hostile_frames_never_raise_and_never_get_a_reply_for_an_unowned_ip(frame: bytes) -> None:
    asker.parse_arp(frame)
    pk.parse_ndp(frame)
    arp, ndp = FakePacketIO(), FakePacketIO()
    r = Responder("eth0", pk.mac_str(OURS), arp, ndp, "fe80::1")
    r.set_owned(OWNED)
    verdicts = {r.on_arp(frame), r.on_ndp(frame)}
    for sent in arp.sent + ndp.sent:
        assert replied_for(sent) in OWNED
    assert (Verdict.REPLIED in verdicts) == bool(arp.sent or ndp.sent)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(OWNED)), st.binary(min_size=0, max_size=64))
def test_requests_for_owned_ips_are_answered_whatever_trails_them(ip: str, trailer: bytes) -> None:
    """The other half: padding or extra bytes after a valid request do not stop the answer."""
    client = pk.mac_bytes("02:00:00:00:00:99")
    if ":" in ip:
        frame = asker.neighbor_solicit(client, "fe80::99", ip)
    else:
        frame = pk.build_arp(pk.ARP_REQUEST, pk.BROADCAST, client, "192.0.2.100", b"\0" * 6, ip)
    r = Responder("eth0", pk.mac_str(OURS), FakePacketIO(), FakePacketIO(), "fe80::1")
    r.set_owned(OWNED)
    handle = r.on_ndp if ":" in ip else r.on_arp
    assert handle(frame + trailer) is Verdict.REPLIED


@settings(max_examples=300, deadline=None)
@given(arp_frames() | ndp_frames(), st.integers(1, 4094))
def test_vlan_tagged_frames_are_not_answered(frame: bytes, vid: int) -> None:
    """A tagged frame belongs to another L2 domain than the interface's own: not ours to answer."""
    tagged = vlan_tag(frame, vid)
    assert asker.parse_arp(tagged) is None and pk.parse_ndp(tagged) is None
