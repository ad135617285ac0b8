"""Which interfaces the speaker answers on, its own MACs, and interfaces that vanish under it."""

from __future__ import annotations

import logging

import pytest

from ironlb.common.events import EventRecorder
from ironlb.common.kubeapi import Client, ClusterConfig
from ironlb.speaker.control.app import Speaker
from ironlb.speaker.control.interfaces import Skip, all_macs, classify, excluded, usable
from ironlb.speaker.control.netlink import Attrs, Message
from ironlb.speaker.fast.announcer import Announcer, Interface, resolve
from ironlb.speaker.fast.l2 import packets as pk
from ironlb.speaker.fast.l2.responder import Responder, Verdict
from ironlb.speaker.state.desired import ALL_INTERFACES
from tests.fakeio import FakePacketIO
from tests.unit.common.test_events import FakeClock, RecordingSink

OFFLINE = Client(ClusterConfig("http", "127.0.0.1", 9))  # never asked: these tests make no API call

VIP = "203.0.113.10"


def link(index: int, name: str, mac: str = "02:00:00:00:00:01", kind: str | None = None, up: bool = True,
         master: int | None = None, loopback: bool = False, carrier: bool = True) -> Message:
    info = Attrs({"IFLA_INFO_KIND": kind}) if kind else None
    flags = (0x1 if up else 0) | (0x8 if loopback else 0) | (0x10000 if up and carrier else 0)
    attrs = {"IFLA_IFNAME": name, "IFLA_ADDRESS": mac, "IFLA_LINKINFO": info, "IFLA_MASTER": master}
    return Message({k: v for k, v in attrs.items() if v is not None}, "RTM_NEWLINK", {"index": index, "flags": flags})


def addr(index: int, address: str, family: int = 2) -> Message:
    return Message({"IFA_ADDRESS": address}, "RTM_NEWADDR", {"index": index, "family": family})


LINKS = [
    link(1, "lo", "00:00:00:00:00:00", loopback=True),
    link(2, "eth0", "02:00:00:00:00:02", kind="veth"),           # a node uplink that is a veth (containers, the lab)
    link(3, "mgmt0", "02:00:00:00:00:03"),
    link(4, "vethabc", "02:00:00:00:00:04", kind="veth"),        # a pod's veth, no address
    link(5, "cali1234", "02:00:00:00:00:05", kind="veth"),
    link(6, "podbr", "02:00:00:00:00:06", kind="bridge"),
    link(7, "vethport", "02:00:00:00:00:07", kind="veth", master=6),
    link(8, "eth1", "02:00:00:00:00:08", up=False),
    link(9, "ilbp0a", "02:00:00:00:00:09", kind="veth"),
]
ADDRS = [addr(2, "192.0.2.11"), addr(2, "fe80::2", 10), addr(4, "fe80::4", 10), addr(9, "fe80::9", 10)]


def test_pod_veths_and_cni_interfaces_are_used_only_when_named() -> None:
    found = usable(LINKS, ADDRS, {"mgmt0"})
    assert {n for n, i in found.items() if i.by_default} == {"eth0"}
    assert {n for n, i in found.items() if not i.by_default} == {"vethabc", "cali1234", "ilbp0a"}
    assert found["eth0"].link_local == "fe80::2"
    addressed = {2}
    reasons = {lk.get_attr("IFLA_IFNAME"): classify(lk, addressed, {"mgmt0"}) for lk in LINKS}
    assert reasons == {"lo": Skip.LOOPBACK, "eth0": None, "mgmt0": Skip.EXCLUDED, "vethabc": Skip.CNI_NAME,
                       "cali1234": Skip.CNI_NAME, "podbr": Skip.VIRTUAL_KIND, "vethport": Skip.BRIDGE_PORT,
                       "eth1": Skip.DOWN, "ilbp0a": Skip.VETH_WITHOUT_ADDRESS}
    want = resolve({VIP: ALL_INTERFACES, "203.0.113.11": frozenset({"ilbp0a"})}, found)
    assert want == {"eth0": {VIP}, "ilbp0a": {"203.0.113.11"}}
    assert pk.mac_bytes("02:00:00:00:00:09") in all_macs(LINKS)  # unused interfaces' MACs are ours too


def test_excluded_interfaces_are_names_or_globs_and_beat_an_advertisement_naming_them() -> None:
    found = usable(LINKS, ADDRS, {"mgmt[0-9]", "eth*", "cali*"})
    assert set(found) == {"vethabc", "ilbp0a"}  # eth0, mgmt0, cali1234 excluded; the rest skipped as before
    assert resolve({VIP: frozenset({"eth0", "cali1234"})}, found) == {}
    reasons = {lk.get_attr("IFLA_IFNAME"): classify(lk, {2}, {"eth*"}) for lk in LINKS}
    assert reasons["eth0"] is Skip.EXCLUDED and reasons["eth1"] is Skip.EXCLUDED and reasons["mgmt0"] is None
    assert excluded("docker0", ["docker*"]) and not excluded("eth0", ["docker*"]) and not excluded("eth0", [])


def test_frames_from_any_of_our_macs_are_never_a_duplicate() -> None:
    seen: list[tuple[str, str, str]] = []
    other_end = pk.mac_bytes("02:00:00:00:00:09")
    r = Responder("eth0", "02:00:00:00:00:02", FakePacketIO(), FakePacketIO(), "fe80::2",
                  on_duplicate=lambda *a: seen.append(a), own_macs={other_end})
    r.set_owned(frozenset({VIP, "2001:db8:ffff::5"}))
    assert r.on_arp(pk.gratuitous_arp(other_end, VIP)) is Verdict.OWN_FRAME
    assert r.on_ndp(pk.unsolicited_na(other_end, "fe80::9", "2001:db8:ffff::5")) is Verdict.OWN_FRAME
    spoof = pk.gratuitous_arp(pk.mac_bytes("02:5a:00:00:00:01"), VIP)
    assert r.on_ndp(b"") is Verdict.MALFORMED and seen == []
    assert r.on_arp(spoof) is Verdict.DUPLICATE_SEEN and len(seen) == 1
    # The Ethernet source or the ARP sender being ours is enough: our frame relayed by a bridge is still ours.
    relayed = pk.gratuitous_arp(other_end, VIP)[:6] + pk.mac_bytes("02:00:00:00:00:77") + pk.gratuitous_arp(
        other_end, VIP)[12:]
    assert r.on_arp(relayed) is Verdict.OWN_FRAME


def test_an_interface_that_vanishes_before_its_sockets_open_is_skipped() -> None:
    opened: list[Responder] = []

    def factory(iface: Interface) -> Responder:
        if iface.name == "gone":
            raise OSError(19, "No such device")
        r = Responder(iface.name, iface.mac, FakePacketIO(), FakePacketIO(), iface.link_local)
        opened.append(r)
        return r

    announcer = Announcer(factory)
    interfaces = {"eth0": Interface("eth0", 2, "02:00:00:00:00:02"), "gone": Interface("gone", 9, "02:00:00:00:00:09")}
    diff = announcer.apply({VIP: frozenset({"eth0", "gone"})}, interfaces)
    assert diff.added == ((VIP, "eth0"),) and set(announcer.responders) == {"eth0"}
    announcer.apply({}, interfaces)
    assert all(r.arp.closed for r in opened)


def test_a_flood_of_duplicate_frames_is_counted_and_logged_and_recorded_a_few_times(
        caplog: pytest.LogCaptureFixture) -> None:
    speaker = Speaker("node-1", None, OFFLINE, b"k" * 32, 7946, [])
    sink = RecordingSink()
    speaker.status.events = EventRecorder(sink, "ironlb-speaker", "node-1", clock=FakeClock())
    svc = {"metadata": {"name": "web", "namespace": "default", "uid": "u1"}, "spec": {"type": "LoadBalancer"},
           "status": {"loadBalancer": {"ingress": [{"ip": VIP}]}}}
    speaker.view.apply("services", "ADDED", svc)  # the table's entry for VIP names its Service
    speaker.view.publish()
    with caplog.at_level(logging.WARNING, logger="ironlb.speaker.control.app"):
        for i in range(10_000):
            speaker._duplicate(VIP, f"02:5a:00:00:00:{i % 50:02x}", "eth0")
    speaker.status.events.close()
    assert speaker.duplicates == {"eth0": 10_000}
    assert len(caplog.records) == 1
    stats = speaker.status.events.stats()
    assert sum(stats.values()) == 10_000 and stats["dropped"] >= 10_000 - 25
    assert 1 <= len(sink.objects()) <= 10 and len(sink.calls) <= 25
