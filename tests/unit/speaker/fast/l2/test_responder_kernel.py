"""The responder keeps its in-kernel half in step with what it owns, and drops it rather than let it answer wrongly."""

from __future__ import annotations

import pytest

from ironlb.speaker.fast.l2.responder import Responder
from tests.fakeio import FakePacketIO


class Kernel:
    """Records what the responder asks of the in-kernel responder; can be made to fail."""

    def __init__(self, fail_on: str = "") -> None:
        self.ips: set[str] = set()
        self.fail_on, self.closed, self.count = fail_on, False, 5

    def add(self, ip: str) -> None:
        if self.fail_on == "add":
            raise OSError(7, "map full")
        self.ips.add(ip)

    def remove(self, ip: str) -> None:
        if self.fail_on == "remove":
            raise OSError(9, "bad descriptor")
        self.ips.discard(ip)

    def replies(self) -> int:
        return self.count

    def close(self) -> None:
        self.closed = True


def responder(kernel: Kernel) -> Responder:
    return Responder("eth0", "02:00:00:00:00:01", FakePacketIO(), FakePacketIO(), "fe80::1",
                     kernel=kernel)  # type: ignore[arg-type]


def test_the_kernel_holds_exactly_the_ipv4_ips_owned() -> None:
    kernel = Kernel()
    r = responder(kernel)
    r.change(["203.0.113.1", "203.0.113.2", "2001:db8::1"], [])
    assert kernel.ips == {"203.0.113.1", "203.0.113.2"}  # NDP stays in user space
    r.change(["203.0.113.3"], ["203.0.113.1", "203.0.113.9"])  # removing what is not owned is no change
    assert kernel.ips == {"203.0.113.2", "203.0.113.3"}
    r.set_owned({"198.51.100.7"})
    assert kernel.ips == {"198.51.100.7"}
    stats = r.counters()
    assert stats.in_kernel and stats.kernel_replies == 5
    r.close()
    assert kernel.ips == set() and kernel.closed


@pytest.mark.parametrize("fail_on", ["add", "remove"])
def test_a_failing_kernel_is_dropped_and_user_space_answers(fail_on: str, caplog: pytest.LogCaptureFixture) -> None:
    kernel = Kernel()
    r = responder(kernel)
    r.change(["203.0.113.1"], [])
    kernel.fail_on = fail_on
    r.change(["203.0.113.2"], ["203.0.113.1"])
    assert kernel.closed and r.kernel is None
    stats = r.counters()
    assert not stats.in_kernel and stats.kernel_replies == 5  # what it sent stays counted
    assert r.owned == {"203.0.113.2"}  # ownership itself is unchanged: user space answers for it
    assert "answered from user space from now on" in caplog.text
