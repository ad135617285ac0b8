"""ARP/NDP frames (checked against scapy), BPF programs, and the responder over a fake PacketIO."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import struct
from typing import Any

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, IPv6
from scapy.layers.l2 import ARP, Ether

from e2e.probes import asker
from ironlb.speaker.fast.l2 import bpf
from ironlb.speaker.fast.l2 import packets as pk
from ironlb.speaker.fast.l2.responder import Responder, Verdict
from tests.fakeio import FakePacketIO
from tests.unit.speaker.fast.l2 import cbpf

OURS = "02:00:00:00:00:01"
CLIENT = "02:00:00:00:00:99"
FOREIGN = "02:00:00:00:00:42"
LL = "fe80::1"


def arp_request(target: str, src_mac: str = CLIENT) -> bytes:
    """A broadcast who-has TARGET from the client."""
    return pk.build_arp(pk.ARP_REQUEST, pk.BROADCAST, pk.mac_bytes(src_mac), "192.0.2.100", b"\0" * 6, target)


def test_arp_reply_matches_scapy_view() -> None:
    fields = pk.arp_fields(arp_request("203.0.113.10"))
    assert fields is not None
    _, _, sender_mac, sender_ip, _, target_ip = fields
    reply = pk.arp_reply_raw(pk.mac_bytes(OURS), sender_mac, sender_ip, target_ip)  # the responder's reply
    frame = Ether(reply)
    assert frame.dst == CLIENT and frame.src == OURS
    assert frame[ARP].op == 2 and frame[ARP].psrc == "203.0.113.10" and frame[ARP].hwsrc == OURS
    assert frame[ARP].pdst == "192.0.2.100" and frame[ARP].hwdst == CLIENT
    garp = Ether(pk.gratuitous_arp(pk.mac_bytes(OURS), "203.0.113.10"))
    assert garp.dst == "ff:ff:ff:ff:ff:ff" and garp[ARP].psrc == garp[ARP].pdst == "203.0.113.10"


def test_ndp_frames_match_scapy_including_checksums() -> None:
    ns = asker.neighbor_solicit(pk.mac_bytes(CLIENT), "fe80::99", "2001:db8:ffff::5")
    parsed = Ether(ns)
    assert parsed[IPv6].dst == "ff02::1:ff00:5" and parsed.dst == "33:33:ff:00:00:05"
    assert parsed[ICMPv6ND_NS].tgt == "2001:db8:ffff::5"
    recomputed = parsed.copy()
    del recomputed[ICMPv6ND_NS].cksum  # scapy computes its own checksum: it must equal ours
    assert Ether(bytes(recomputed))[ICMPv6ND_NS].cksum == parsed[ICMPv6ND_NS].cksum
    na = Ether(pk.ndp_reply(pk.mac_bytes(OURS), LL, "2001:db8:ffff::5", pk.parse_ndp(ns)))
    assert na[IPv6].hlim == 255 and na[IPv6].dst == "fe80::99" and na.dst == CLIENT
    assert na[ICMPv6ND_NA].tgt == "2001:db8:ffff::5" and na[ICMPv6ND_NA].S == 1 and na[ICMPv6ND_NA].O == 1
    check = na.copy()
    del check[ICMPv6ND_NA].cksum
    assert Ether(bytes(check))[ICMPv6ND_NA].cksum == na[ICMPv6ND_NA].cksum


@pytest.mark.parametrize("frame", [b"", b"\x00" * 20, arp_request("203.0.113.10")[:30]])
def test_truncated_frames_are_rejected(frame: bytes) -> None:
    assert asker.parse_arp(frame) is None and pk.parse_ndp(frame) is None


def test_bpf_programs_select_the_right_frames() -> None:
    ns = asker.neighbor_solicit(pk.mac_bytes(CLIENT), "fe80::99", "2001:db8:ffff::5")
    na = pk.unsolicited_na(pk.mac_bytes(OURS), LL, "2001:db8:ffff::5")
    ipv4 = bytes(Ether(type=0x0800)) + b"\x45" + b"\0" * 40
    rs = bytes(Ether(dst="33:33:00:00:00:02") / IPv6(dst="ff02::2", hlim=255) / b"\x85\x00\x00\x00\x00\x00\x00\x00")
    assert cbpf.run(bpf.ARP_PROGRAM, arp_request("203.0.113.10")) > 0
    assert cbpf.run(bpf.ARP_PROGRAM, ipv4) == 0
    assert cbpf.run(bpf.NDP_PROGRAM, ns) > 0 and cbpf.run(bpf.NDP_PROGRAM, na) > 0
    assert cbpf.run(bpf.NDP_PROGRAM, rs) == 0 and cbpf.run(bpf.NDP_PROGRAM, arp_request("203.0.113.1")) == 0
    owned = bpf.arp_program(["203.0.113.10"])
    assert cbpf.run(owned, arp_request("203.0.113.10")) > 0
    assert cbpf.run(owned, arp_request("203.0.113.11")) == 0
    assert cbpf.run(owned, pk.gratuitous_arp(pk.mac_bytes(FOREIGN), "203.0.113.10")) > 0  # duplicate detection
    too_many = [f"198.51.{i // 256}.{i % 256}" for i in range(bpf.MAX_FILTERED_IPS + 1)]
    assert bpf.arp_program(too_many) == bpf.ARP_PROGRAM  # past the kernel's instruction limit: all ARP


def responder() -> tuple[Responder, FakePacketIO, FakePacketIO, list]:
    """A responder on fake IO, with a duplicate hook that records calls."""
    arp, ndp, seen = FakePacketIO(), FakePacketIO(), []
    r = Responder("eth0", OURS, arp, ndp, LL, on_duplicate=lambda *a: seen.append(a), burst=3, burst_gap_s=0.001)
    r.set_owned(frozenset({"203.0.113.10", "2001:db8:ffff::5"}))
    return r, arp, ndp, seen


def test_responder_answers_only_for_owned_ips() -> None:
    r, arp, ndp, seen = responder()
    assert r.on_arp(arp_request("203.0.113.10")) is Verdict.REPLIED
    assert len(arp.sent) == 1 and asker.parse_arp(arp.sent[0]).op == pk.ARP_REPLY
    assert r.on_arp(arp_request("203.0.113.11")) is Verdict.NOT_OWNED
    assert r.on_arp(arp_request("203.0.113.10", src_mac=OURS)) is Verdict.OWN_FRAME
    assert len(arp.sent) == 1
    claim = pk.gratuitous_arp(pk.mac_bytes(FOREIGN), "203.0.113.10")
    assert r.on_arp(claim) is Verdict.DUPLICATE_SEEN and seen == [("203.0.113.10", FOREIGN, "eth0")]
    ns = asker.neighbor_solicit(pk.mac_bytes(CLIENT), "fe80::99", "2001:db8:ffff::5")
    assert r.on_ndp(ns) is Verdict.REPLIED and pk.parse_ndp(ndp.sent[0]).target == "2001:db8:ffff::5"
    assert r.on_ndp(asker.neighbor_solicit(pk.mac_bytes(CLIENT), "fe80::99", "2001:db8:ffff::6")) is Verdict.NOT_OWNED
    assert pk.multicast_mac(pk.solicited_node("2001:db8:ffff::5")) in ndp.joined
    assert (r.stats.requests, r.stats.replies, r.stats.duplicates) == (4, 2, 1)
    assert arp.filter is not None
    assert cbpf.run(arp.filter, arp_request("203.0.113.10")) > 0
    assert cbpf.run(arp.filter, arp_request("203.0.113.9")) == 0


def test_release_leaves_groups_and_announce_sends_a_burst() -> None:
    r, arp, ndp, _ = responder()
    asyncio.run(r.announce("203.0.113.10"))
    asyncio.run(r.announce("2001:db8:ffff::5"))
    assert len(arp.sent) == 3 and all(asker.parse_arp(f).target_ip == "203.0.113.10" for f in arp.sent)
    assert len(ndp.sent) == 3 and r.stats.gratuitous == 6
    r.set_owned(frozenset())
    assert ndp.joined == set()
    assert r.on_arp(arp_request("203.0.113.10")) is Verdict.NOT_OWNED


def test_unicast_reachability_probes_are_answered() -> None:
    """The kernel re-checks a neighbour with unicast ARP / NS (no options, sent to the VIP itself)."""
    r, arp, ndp, seen = responder()
    ours, client = pk.mac_bytes(OURS), pk.mac_bytes(CLIENT)
    unicast_arp = pk.build_arp(pk.ARP_REQUEST, ours, client, "192.0.2.100", ours, "203.0.113.10")
    assert r.on_arp(unicast_arp) is Verdict.REPLIED
    reply = asker.parse_arp(arp.sent[-1])
    assert reply.op == pk.ARP_REPLY and reply.sender_mac == ours and reply.target_mac == client
    assert arp.sent[-1][:6] == client  # straight back to the asker
    # NS to the VIP's own address (not its solicited-node group), without a source link-layer option.
    icmp = struct.pack("!BBHI16s", pk.NDP_SOLICIT, 0, 0, 0, ipaddress.IPv6Address("2001:db8:ffff::5").packed)
    probe = pk.icmpv6_frame(ours, client, "2001:db8:ffff::99", "2001:db8:ffff::5", icmp)
    assert r.on_ndp(probe) is Verdict.REPLIED
    na = pk.parse_ndp(ndp.sent[-1])
    assert na.type == pk.NDP_ADVERT and na.dst_ip == "2001:db8:ffff::99" and ndp.sent[-1][:6] == client
    assert na.flags & pk.NA_FLAG_SOLICITED and na.link_addr == ours
    assert seen == []


def test_arp_addresses_read_and_written_as_ipaddress_would() -> None:
    rng = random.Random(5)
    for _ in range(500):
        sender, target = (ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(2))
        frame = pk.build_arp(pk.ARP_REQUEST, pk.BROADCAST, b"\x02" * 6, str(sender), b"\x00" * 6, str(target))
        arp = asker.parse_arp(frame)
        assert arp is not None and (arp.sender_ip, arp.target_ip) == (str(sender), str(target))
        assert frame[28:32] == sender.packed and frame[38:42] == target.packed


@pytest.mark.parametrize("bad", ["1", "1.2.3", "256.1.1.1", "01.2.3.4x", "2001:db8::1", ""])
def test_arp_frames_refuse_an_address_that_is_not_a_dotted_quad(bad: str) -> None:
    with pytest.raises(OSError):
        pk.build_arp(pk.ARP_REQUEST, pk.BROADCAST, b"\x02" * 6, bad, b"\x00" * 6, "192.0.2.1")


def test_the_responders_raw_reply_is_the_frame_build_arp_makes() -> None:
    rng = random.Random(9)
    ours = pk.mac_bytes(OURS)
    for _ in range(300):
        asker = bytes([2]) + rng.randbytes(5)
        sender, vip = (str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(2))
        request = pk.build_arp(pk.ARP_REQUEST, pk.BROADCAST, asker, sender, b"\x00" * 6, vip)
        op, eth_src, sha, spa, tha, tpa = pk.arp_fields(request) or (0, b"", b"", b"", b"", b"")
        assert (op, eth_src, sha, spa, tha, tpa) == (pk.ARP_REQUEST, asker, asker, ipaddress.IPv4Address(sender).packed,
                                                     b"\x00" * 6, ipaddress.IPv4Address(vip).packed)
        # The reply, as build_arp makes any frame from its parts (scapy checks build_arp above).
        assert pk.arp_reply_raw(ours, sha, spa, tpa) == pk.build_arp(pk.ARP_REPLY, asker, ours, vip, asker, sender)


@pytest.mark.parametrize("case, mutate", [
    ("too short", lambda f: f[:41]),
    ("not ARP", lambda f: f[:12] + b"\x08\x00" + f[14:]),
    ("not Ethernet hardware", lambda f: f[:14] + b"\x00\x06" + f[16:]),
    ("not IPv4", lambda f: f[:16] + b"\x86\xdd" + f[18:]),
    ("odd address lengths", lambda f: f[:18] + b"\x06\x10" + f[20:]),
])
def test_raw_arp_fields_refuse_what_the_parser_refuses(case: str, mutate: Any) -> None:
    frame = mutate(pk.build_arp(pk.ARP_REQUEST, pk.BROADCAST, b"\x02" * 6, "192.0.2.9", b"\x00" * 6, "192.0.2.1"))
    assert pk.arp_fields(frame) is None and asker.parse_arp(frame) is None, case


PEER = "02:00:00:00:00:07"  # the MAC of a node whose speaker restarts


def test_a_covered_ip_is_answered_with_the_held_peers_mac_from_our_port() -> None:
    r, arp, ndp, seen = responder()
    r.cover({"203.0.113.20": pk.mac_bytes(PEER), "2001:db8:ffff::20": pk.mac_bytes(PEER)})
    assert r.on_arp(arp_request("203.0.113.20")) is Verdict.REPLIED
    reply = Ether(arp.sent[-1])
    assert reply.src == OURS and reply[ARP].hwsrc == PEER and reply[ARP].psrc == "203.0.113.20"
    ns = asker.neighbor_solicit(pk.mac_bytes(CLIENT), "fe80::99", "2001:db8:ffff::20")
    assert r.on_ndp(ns) is Verdict.REPLIED
    na = pk.parse_ndp(ndp.sent[-1])
    assert na.link_addr == pk.mac_bytes(PEER) and na.eth_src == pk.mac_bytes(OURS)
    assert pk.multicast_mac(pk.solicited_node("2001:db8:ffff::20")) in ndp.joined
    assert cbpf.run(arp.filter, arp_request("203.0.113.20")) > 0  # the socket filter lets its requests in
    # The peer back, announcing itself with its own MAC: no duplicate. Anyone else: one.
    assert r.on_arp(pk.gratuitous_arp(pk.mac_bytes(PEER), "203.0.113.20")) is not Verdict.DUPLICATE_SEEN
    assert r.on_arp(pk.gratuitous_arp(pk.mac_bytes(FOREIGN), "203.0.113.20")) is Verdict.DUPLICATE_SEEN
    assert seen == [("203.0.113.20", FOREIGN, "eth0")]
    # Owned IPs are still answered with our MAC.
    assert r.on_arp(arp_request("203.0.113.10")) is Verdict.REPLIED and Ether(arp.sent[-1])[ARP].hwsrc == OURS


def test_a_cover_let_go_is_no_longer_answered_nor_listened_for() -> None:
    r, arp, ndp, _ = responder()
    r.cover({"203.0.113.20": pk.mac_bytes(PEER), "2001:db8:ffff::20": pk.mac_bytes(PEER)})
    r.cover({"203.0.113.20": None, "2001:db8:ffff::20": None})
    assert r.on_arp(arp_request("203.0.113.20")) is Verdict.NOT_OWNED
    assert pk.multicast_mac(pk.solicited_node("2001:db8:ffff::20")) not in ndp.joined
    assert cbpf.run(arp.filter, arp_request("203.0.113.20")) == 0
    assert pk.multicast_mac(pk.solicited_node("2001:db8:ffff::5")) in ndp.joined  # the owned one's group stays
