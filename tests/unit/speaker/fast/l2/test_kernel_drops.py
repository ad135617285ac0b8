"""Kernel drops on the packet sockets, folded into totals that outlive sockets (a real socket's: tests/privileged)."""

from __future__ import annotations

import pytest

from ironlb.speaker.fast.l2.io import DropCounter


class Reads:
    """Stands in for a socket: reports a fixed number of drops on each read, as the kernel would."""

    def __init__(self, counter: DropCounter, ifname: str, drops: list[int]) -> None:
        self.counter, self.ifname, self.drops = counter, ifname, drops

    def collect_drops(self) -> None:
        self.counter.add(self.ifname, self.drops.pop(0) if self.drops else 0)


@pytest.mark.parametrize("case, reads, expected", [
    ("nothing dropped", {"eth0": [0, 0]}, {}),
    ("reads add up (the kernel resets on each read)", {"eth0": [3, 4]}, {"eth0": 7}),
    ("per interface", {"eth0": [1], "eth1": [5, 5]}, {"eth0": 1, "eth1": 10}),
])
def test_totals_fold_every_read(case: str, reads: dict[str, list[int]], expected: dict[str, int]) -> None:
    counter = DropCounter()
    for name, drops in reads.items():
        counter.track(Reads(counter, name, list(drops)), True)  # type: ignore[arg-type]
    for _ in range(2):
        totals = counter.totals()
    assert totals == expected, case


def test_a_closed_socket_keeps_its_count_and_is_no_longer_read() -> None:
    counter = DropCounter()
    io = Reads(counter, "eth0", [2, 9])
    counter.track(io, True)  # type: ignore[arg-type]
    assert counter.totals() == {"eth0": 2}
    counter.track(io, False)  # type: ignore[arg-type]
    assert counter.totals() == {"eth0": 2}

