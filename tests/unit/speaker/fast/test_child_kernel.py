"""The fast plane's choice of ARP responder: in the kernel where it loads, else user space, said once and why."""

from __future__ import annotations

import logging

import pytest

from ironlb.speaker.fast import child as child_module
from ironlb.speaker.fast.announcer import Interface
from ironlb.speaker.fast.child import Child

ETH0 = Interface("eth0", 2, "02:00:00:00:00:01")
ETH1 = Interface("eth1", 3, "02:00:00:00:00:02")


class Refused:
    """Stands in for NodeMaps / KernelArp where the kernel says no."""

    calls = 0

    def __init__(self, *_: object) -> None:
        Refused.calls += 1
        raise PermissionError(1, "creating map ilb_own_macs: Operation not permitted")


def test_refused_means_user_space_said_once(child: Child, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(child_module, "NodeMaps", Refused)
    child.kernel_arp = True
    with caplog.at_level(logging.WARNING):
        assert child._kernel_responder(ETH0) is None
        assert child._kernel_responder(ETH1) is None  # not tried again for every interface
    assert Refused.calls == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["ARP is answered from user space: the in-kernel responder cannot be loaded on eth0 "
                        "(creating map ilb_own_macs: Operation not permitted); it needs the BPF and NET_ADMIN "
                        "capabilities"]


def test_switched_off_nothing_is_loaded(child: Child, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(child_module, "NodeMaps", Refused)
    Refused.calls = 0
    child.kernel_arp = False
    assert child._kernel_responder(ETH0) is None
    assert Refused.calls == 0


def test_one_map_of_own_macs_serves_every_interface(child: Child, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[int, bytes, object]] = []

    class Macs:
        def __init__(self) -> None:
            self.macs: frozenset[bytes] = frozenset()
            self.renewed: list[float] = []

        def set_macs(self, macs: frozenset[bytes]) -> None:
            self.macs = macs

        def renew(self, seconds: float) -> None:
            self.renewed.append(seconds)

    def kernel(index: int, mac: bytes, macs: object) -> str:
        made.append((index, mac, macs))
        return f"kernel-{index}"

    monkeypatch.setattr(child_module, "NodeMaps", Macs)
    monkeypatch.setattr(child_module, "KernelArp", kernel)
    child.kernel_arp = True
    child.own_macs.macs = frozenset({b"\2" * 6})
    assert child._kernel_responder(ETH0) == "kernel-2"
    assert child._kernel_responder(ETH1) == "kernel-3"
    assert made[0][2] is made[1][2] is child.kernel_maps
    assert child.kernel_maps.macs == frozenset({b"\2" * 6})  # type: ignore[union-attr]
    assert child.kernel_maps.renewed == [child.lease_s]  # type: ignore[union-attr]  # answers at once
    assert made[0][1] == bytes.fromhex("020000000001")


def test_every_heartbeat_round_renews_the_lease_and_every_few_report(child: Child) -> None:
    renewed: list[float] = []

    class Maps:
        def renew(self, seconds: float) -> None:
            renewed.append(seconds)

    child.kernel_maps = Maps()  # type: ignore[assignment]
    child.lease_s = 0.075
    reports: list[int] = []
    child._report = lambda: reports.append(len(renewed))  # type: ignore[method-assign]
    child._report_every = 4
    for _ in range(8):
        child._on_round()  # what the heartbeat loop calls once a round (its one wake-up)
    assert renewed == [0.075] * 8 and reports == [4, 8]
