"""The announcer handed only the IPs that changed: the same responders, filters and diffs as a whole apply."""

from __future__ import annotations

import random

from ironlb.speaker.fast.announcer import Announcer, Interface
from ironlb.speaker.fast.l2 import bpf
from ironlb.speaker.fast.l2.responder import Responder
from ironlb.speaker.state.desired import ALL_INTERFACES
from tests.fakeio import FakePacketIO

IFACES = {"eth0": Interface("eth0", 2, "02:00:00:00:00:01", "fe80::1"),
          "eth1": Interface("eth1", 3, "02:00:00:00:00:02", "fe80::2"),
          "veth9": Interface("veth9", 9, "02:00:00:00:00:09", "fe80::9", by_default=False)}
CHOICES = [ALL_INTERFACES, frozenset({"eth1"}), frozenset({"veth9"}), frozenset({"eth0", "veth9"}),
           frozenset({"gone0"}), None]


class Recording(Responder):
    """A responder over fake sockets that records every IP handed to it."""

    touched: list[str]

    def change(self, added: list[str] | tuple[str, ...], removed: list[str] | tuple[str, ...]) -> None:
        """Record, then change."""
        self.touched += [*added, *removed]
        super().change(added, removed)


def announcer(refuse: set[str] | None = None) -> tuple[Announcer, dict[str, Recording]]:
    made: dict[str, Recording] = {}

    def factory(iface: Interface) -> Responder:
        if iface.name in (refuse or set()):
            raise OSError("No such device")
        r = made[iface.name] = Recording(iface.name, iface.mac, FakePacketIO(), FakePacketIO(), iface.link_local)
        r.touched = []
        return r

    return Announcer(factory), made


def owned(ann: Announcer) -> dict[str, set[str]]:
    return {name: set(r.owned) for name, r in ann.responders.items()}


def filter_of(r: Responder) -> list[bpf.Instruction] | None:
    arp = r.arp
    assert isinstance(arp, FakePacketIO)
    return arp.filter


def test_random_changes_applied_alone_end_where_a_whole_apply_does() -> None:
    rng = random.Random(3)
    ips = [f"203.0.113.{i}" for i in range(1, 120)] + [f"2001:db8::{i:x}" for i in range(1, 40)]
    for _ in range(30):
        ann, _ = announcer()
        desired: dict[str, frozenset[str]] = {}
        ann.apply(desired, IFACES)
        pairs: set[tuple[str, str]] = set()
        for _ in range(15):
            changed = rng.sample(ips, rng.randint(1, 60))
            for ip in changed:
                choice = rng.choice(CHOICES)
                if choice is None:
                    desired.pop(ip, None)
                else:
                    desired[ip] = choice
            diff = ann.apply(desired, IFACES, changed)
            assert not set(diff.added) & pairs and set(diff.removed) <= pairs
            pairs = (pairs | set(diff.added)) - set(diff.removed)
            whole, _ = announcer()
            whole.apply(desired, IFACES)
            assert owned(ann) == owned(whole)
            assert pairs == {(ip, name) for name, got in owned(whole).items() for ip in got}
            for name, r in ann.responders.items():  # the kernel filter and groups are what a whole apply makes
                other = whole.responders[name]
                assert filter_of(r) == filter_of(other) or {str(filter_of(r)), str(filter_of(other))} <= {
                    "None", str(bpf.ARP_PROGRAM)}  # None: still the program the socket was opened with
                assert r.ndp.joined == other.ndp.joined  # type: ignore[union-attr]


def test_a_change_touches_only_the_ips_that_moved() -> None:
    ann, made = announcer()
    desired = {f"203.0.113.{i}": ALL_INTERFACES for i in range(1, 200)}
    ann.apply(desired, IFACES)
    made["eth0"].touched.clear()
    desired["203.0.113.7"] = frozenset({"eth1"})
    diff = ann.apply(desired, IFACES, ["203.0.113.7"])
    assert made["eth0"].touched == ["203.0.113.7"]
    assert diff.removed == (("203.0.113.7", "eth0"),) and diff.added == ()


def test_the_last_ip_leaving_closes_the_interface_and_the_next_one_opens_it() -> None:
    ann, made = announcer()
    ann.apply({}, IFACES)
    ann.apply({"203.0.113.5": frozenset({"veth9"})}, IFACES, ["203.0.113.5"])
    first = made["veth9"]
    ann.apply({}, IFACES, ["203.0.113.5"])
    assert "veth9" not in ann.responders and first.arp.closed  # type: ignore[attr-defined]
    ann.apply({"203.0.113.5": frozenset({"veth9"})}, IFACES, ["203.0.113.5"])
    assert made["veth9"] is not first and made["veth9"].owned == {"203.0.113.5"}


def test_an_interface_that_cannot_be_opened_is_tried_again_on_the_next_change() -> None:
    ann, _ = announcer(refuse={"veth9"})
    ann.apply({}, IFACES)
    diff = ann.apply({"203.0.113.5": frozenset({"eth0", "veth9"})}, IFACES, ["203.0.113.5"])
    assert diff.added == (("203.0.113.5", "eth0"),) and "veth9" not in ann.responders
    ann.factory = announcer()[0].factory  # the interface is there now
    diff = ann.apply({"203.0.113.5": frozenset({"eth0", "veth9"}), "203.0.113.6": frozenset({"veth9"})},
                     IFACES, ["203.0.113.5", "203.0.113.6"])
    assert set(diff.added) == {("203.0.113.5", "veth9"), ("203.0.113.6", "veth9")}


def test_new_interfaces_fall_back_to_a_whole_apply() -> None:
    ann, _ = announcer()
    desired = {"203.0.113.5": ALL_INTERFACES}
    ann.apply(desired, IFACES)
    fewer = {k: v for k, v in IFACES.items() if k != "eth1"}
    diff = ann.apply(desired, fewer, [])  # nothing "changed", but eth1 went: it is dropped all the same
    assert diff.removed == (("203.0.113.5", "eth1"),) and set(ann.responders) == {"eth0"}
