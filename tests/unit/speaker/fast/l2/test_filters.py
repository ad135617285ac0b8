"""The kernel filters on the ARP/NDP sockets: only frames naming an owned IP reach Python, for as many IPs as the
kernel's instruction limit allows; frames to other hosts' MACs never; and a filter the kernel refuses is
counted and logged once, leaving a socket that passes everything rather than a stale narrow filter."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from e2e.probes import asker
from ironlb.speaker.fast.l2 import bpf
from ironlb.speaker.fast.l2 import packets as pk
from ironlb.speaker.fast.l2.responder import Responder
from tests.fakeio import FakePacketIO
from tests.unit.speaker.fast.l2 import cbpf

OURS, CLIENT, FOREIGN, STRANGER = (pk.mac_bytes(f"02:00:00:00:00:{n}") for n in ("01", "99", "42", "77"))
LL = "fe80::1"
V4 = [f"198.51.{i // 256}.{i % 256}" for i in range(bpf.MAX_FILTERED_IPS)]
V6 = [str(ipaddress.IPv6Address("2001:db8:ffff::") + i) for i in range(bpf.MAX_FILTERED_IPV6)]


def who_has(target: str, dst: bytes = pk.BROADCAST, sender: str = "192.0.2.100") -> bytes:
    """A who-has TARGET from the client, to DST."""
    return pk.build_arp(pk.ARP_REQUEST, dst, CLIENT, sender, bytes(6), target)


def solicit(target: str) -> bytes:
    """An NS for TARGET from the client."""
    return asker.neighbor_solicit(CLIENT, "fe80::99", target)


def test_arp_filter_names_every_owned_ip_up_to_the_limit() -> None:
    prog = bpf.arp_program(V4)
    assert len(prog) <= bpf.MAX_INSNS
    for ip in (V4[0], V4[len(V4) // 2], V4[-1]):
        assert cbpf.run(prog, who_has(ip)) > 0
        assert cbpf.run(prog, pk.gratuitous_arp(FOREIGN, ip)) > 0  # a claim on it: duplicate detection
        assert cbpf.run(prog, pk.build_arp(pk.ARP_REPLY, CLIENT, FOREIGN, ip, CLIENT, "192.0.2.100")) > 0
    assert cbpf.run(prog, who_has("203.0.113.1")) == 0  # the flood of requests for other hosts' IPs
    assert cbpf.run(prog, who_has(V4[0])[:30]) == 0


def test_ndp_filter_names_owned_targets_up_to_the_limit() -> None:
    prog = bpf.ndp_program(V6)
    assert len(prog) <= bpf.MAX_INSNS
    for ip in (V6[0], V6[-1]):
        assert cbpf.run(prog, solicit(ip)) > 0
        assert cbpf.run(prog, pk.unsolicited_na(FOREIGN, LL, ip)) > 0  # a claim on it
    assert cbpf.run(prog, solicit("2001:db8:eeee::1:0")) == 0
    # Only the low 32 bits are compared: an address sharing them passes, and the responder tells them apart.
    assert cbpf.run(prog, solicit("2001:db8:eeee::" + V6[1].rsplit(":", 1)[1])) > 0
    assert bpf.ndp_program([*V6, "2001:db8::1"]) == bpf.NDP_PROGRAM


@pytest.mark.parametrize("prog", [bpf.ARP_PROGRAM, bpf.arp_program(["203.0.113.10"])])
def test_frames_to_another_hosts_mac_are_dropped(prog: list[bpf.Instruction]) -> None:
    frame = who_has("203.0.113.10", dst=STRANGER)
    assert cbpf.run(prog, frame, pkttype=0) > 0
    assert cbpf.run(prog, frame, pkttype=bpf.PACKET_OTHERHOST) == 0
    assert cbpf.run(bpf.NDP_PROGRAM, solicit(V6[0]), pkttype=bpf.PACKET_OTHERHOST) == 0


def test_an_interface_owning_nothing_takes_no_requests() -> None:
    arp, ndp = FakePacketIO(), FakePacketIO()
    Responder("eth0", pk.mac_str(OURS), arp, ndp, LL)
    assert arp.filter is not None and ndp.filter is not None
    assert cbpf.run(arp.filter, who_has("203.0.113.1")) == 0 and cbpf.run(ndp.filter, solicit(V6[0])) == 0


def test_responder_filters_both_families_and_passes_all_past_the_limit() -> None:
    arp, ndp = FakePacketIO(), FakePacketIO()
    r = Responder("eth0", pk.mac_str(OURS), arp, ndp, LL)
    r.set_owned(V4[:200] + V6[:200])
    assert arp.filter == bpf.arp_program(sorted(V4[:200]))
    assert ndp.filter == bpf.ndp_program(sorted(V6[:200]))
    r.change([*V4[200:], "203.0.113.1"], [])
    assert arp.filter == bpf.ARP_PROGRAM
    r.change([], ["203.0.113.1"])
    assert arp.filter == bpf.arp_program(sorted(V4))


def test_a_refused_filter_is_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    arp, ndp = FakePacketIO(), FakePacketIO()
    r = Responder("eth0", pk.mac_str(OURS), arp, ndp, LL)
    arp.refuse_filters = ndp.refuse_filters = True
    with caplog.at_level(logging.WARNING):
        r.set_owned(["203.0.113.10", "2001:db8:ffff::5"])
        r.change(["203.0.113.11"], [])
        r.change(["2001:db8:ffff::6"], [])
    assert r.stats.filter_failures == 4  # each family once, then one change of each
    assert sum("refused a packet filter" in m for m in caplog.messages) == 1
    arp.refuse_filters = False
    r.change(["203.0.113.12"], [])  # the next change tries again
    assert arp.filter == bpf.arp_program(["203.0.113.10", "203.0.113.11", "203.0.113.12"])
