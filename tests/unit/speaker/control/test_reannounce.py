"""Periodic re-announce: one gratuitous frame per owned IP and interface each interval, only when on."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from e2e.probes import asker
from ironlb.speaker.control.reannounce import reannounce_every
from ironlb.speaker.fast.announcer import Announcer, Interface
from ironlb.speaker.fast.l2 import packets as pk
from ironlb.speaker.fast.l2.responder import Responder
from ironlb.speaker.state.desired import ALL_INTERFACES
from tests.fakeio import FakePacketIO

IFACES = {"eth0": Interface("eth0", 2, "02:00:00:00:00:01", "fe80::1"),
          "eth1": Interface("eth1", 3, "02:00:00:00:00:02", "fe80::2")}


def announcer() -> tuple[Announcer, dict[str, tuple[FakePacketIO, FakePacketIO]]]:
    ios: dict[str, tuple[FakePacketIO, FakePacketIO]] = {}

    def factory(iface: Interface) -> Responder:
        arp, ndp = ios[iface.name] = (FakePacketIO(), FakePacketIO())
        return Responder(iface.name, iface.mac, arp, ndp, iface.link_local)

    return Announcer(factory), ios


def sleeper(rounds: int) -> tuple[list[float], object]:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        if len(slept) == rounds:
            raise asyncio.CancelledError
        slept.append(s)

    return slept, sleep


# (case, interval, rounds run, desired, frames expected per (interface, family))
CASES = [
    ("off", 0.0, 3, {"203.0.113.10": ALL_INTERFACES}, {}),
    ("negative is off", -1.0, 3, {"203.0.113.10": ALL_INTERFACES}, {}),
    ("one v4 IP on both interfaces, 3 rounds", 5.0, 3, {"203.0.113.10": ALL_INTERFACES},
     {("eth0", "arp"): 3, ("eth1", "arp"): 3}),
    ("v4 and v6 on one named interface", 1.0, 2,
     {"203.0.113.10": frozenset({"eth1"}), "2001:db8:ffff::5": frozenset({"eth1"})},
     {("eth1", "arp"): 2, ("eth1", "ndp"): 2}),
    ("nothing owned sends nothing", 1.0, 4, {}, {}),
]


@pytest.mark.parametrize(("case", "interval", "rounds", "desired", "expected"), CASES, ids=[c[0] for c in CASES])
def test_reannounce(case: str, interval: float, rounds: int, desired: dict, expected: dict) -> None:
    ann, ios = announcer()
    ann.apply(desired, IFACES)  # no loop: the takeover burst is not sent, so every frame below is a refresh
    slept, sleep = sleeper(rounds)
    with pytest.raises(asyncio.CancelledError) if interval > 0 else contextlib.nullcontext():
        asyncio.run(reannounce_every(ann, interval, sleep))  # type: ignore[arg-type]
    assert slept == ([interval] * rounds if interval > 0 else [])
    got = {(name, fam): len(io.sent) for name, pair in ios.items() for fam, io in zip(("arp", "ndp"), pair, strict=True)
           if io.sent}
    assert got == expected
    for arp, ndp in ios.values():
        sent = [asker.parse_arp(f) for f in arp.sent]
        assert all(a.op == pk.ARP_REQUEST and a.sender_ip == a.target_ip for a in sent), \
            "gratuitous ARP: sender and target are the VIP"
        assert all(pk.parse_ndp(f).type == pk.NDP_ADVERT for f in ndp.sent)


def test_a_released_ip_is_no_longer_refreshed() -> None:
    ann, ios = announcer()
    ann.apply({"203.0.113.10": ALL_INTERFACES, "203.0.113.11": ALL_INTERFACES}, IFACES)
    ann.reannounce()
    ann.apply({"203.0.113.11": ALL_INTERFACES}, IFACES)
    ann.reannounce()
    sent = [asker.parse_arp(f).target_ip for f in ios["eth0"][0].sent]
    assert sent == ["203.0.113.10", "203.0.113.11", "203.0.113.11"]

