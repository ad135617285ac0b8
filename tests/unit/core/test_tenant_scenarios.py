"""Tenant boundaries in the allocator: reuse holds (no squatting) and sharing across namespaces."""

from __future__ import annotations

import pytest

from ironlb.core.addresses import int_to_ip
from ironlb.core.allocator import AllocationReason, Allocator, ServiceRequest
from ironlb.core.pools import Pool
from tests.unit.core.allocator_steps import (
    TCP80,
    TCP443,
    V4,
    FakeClock,
    Step,
    assign,
    at,
    pool,
    release,
    restore,
    run_step,
    stats,
)

HELD = AllocationReason.REQUESTED_IP_HELD
DELAY = 300.0
A, B = {"namespace": "a"}, {"namespace": "b"}

SCENARIOS: dict[str, tuple[list[Pool], list[Step]]] = {
    "squatting: a released IP is refused to other namespaces until its hold ends; its owner gets it back": (
        [pool("p", "203.0.113.0/29")], [
            assign("a/web", ("203.0.113.0",), requested_ips=["203.0.113.0"], **A),
            assign("b/squat", reason=AllocationReason.REQUESTED_IP_IN_USE, requested_ips=["203.0.113.0"], **B),
            release("a/web", ("203.0.113.0",)),
            assign("b/squat", reason=HELD, requested_ips=["203.0.113.0"], **B),
            assign("b/auto", ("203.0.113.1",), **B),
            assign("a/web", ("203.0.113.0",), requested_ips=["203.0.113.0"], **A),
            at(100),
            release("a/web", ("203.0.113.0",)),
            at(100 + DELAY - 1),
            assign("b/squat", reason=HELD, requested_ips=["203.0.113.0"], **B),
            at(100 + DELAY, ended=("203.0.113.0",)),
            assign("b/squat", ("203.0.113.0",), requested_ips=["203.0.113.0"], **B),
        ]),
    "automatic allocation: the owner's IP comes back, its namespace may take it, other namespaces skip it": (
        [pool("p", "203.0.113.0/30")], [
            assign("a/one", ("203.0.113.0",), **A),
            assign("a/two", ("203.0.113.1",), **A),
            release("a/one", ("203.0.113.0",)),
            stats("p", V4, 4, 1, 2),
            assign("b/x", ("203.0.113.2",), **B),
            assign("a/one", ("203.0.113.0",), **A),
            assign("a/three", ("203.0.113.3",), **A),
            release("a/two", ("203.0.113.1",)),
            assign("b/y", reason=AllocationReason.POOL_EXHAUSTED, **B),
            assign("b/y", reason=HELD, requested_ips=["203.0.113.1"], **B),
            at(DELAY, ended=("203.0.113.1",)),
            stats("p", V4, 4, 3, 1),
            assign("b/y", ("203.0.113.1",), **B),
        ]),
    "its own namespace may take an IP held for it at once, by request or as the lowest free": (
        [pool("p", "203.0.113.0/30")], [
            assign("a/one", ("203.0.113.2",), requested_ips=["203.0.113.2"], **A),
            release("a/one", ("203.0.113.2",)),
            assign("a/other", ("203.0.113.2",), requested_ips=["203.0.113.2"], **A),
            release("a/other", ("203.0.113.2",)),
            assign("b/auto", ("203.0.113.0",), **B),
            assign("a/auto", ("203.0.113.1",), **A),
            assign("a/auto2", ("203.0.113.2",), **A),
            release("a/auto2", ("203.0.113.2",)),
            at(DELAY, ended=("203.0.113.2",)),
        ]),
    "sharing keys do not cross namespaces unless the IP's pool allows it": (
        [pool("closed", "203.0.113.0/30"),
         pool("open", "198.51.100.0/30", auto_assign=False, allow_shared_ip_across_namespaces=True)], [
            assign("a/web", ("203.0.113.0",), sharing_key="k", ports=TCP80, **A),
            assign("b/web", ("203.0.113.1",), sharing_key="k", ports=TCP443, **B),
            assign("b/req", reason=AllocationReason.SHARING_INCOMPATIBLE, requested_ips=["203.0.113.0"],
                   sharing_key="k", ports=(("TCP", 8080),), **B),
            assign("a/api", ("203.0.113.0",), sharing_key="k", ports=TCP443, **A),
            assign("a/o", ("198.51.100.0",), requested_pool="open", sharing_key="o", ports=TCP80, **A),
            assign("b/o", ("198.51.100.0",), requested_pool="open", sharing_key="o", ports=TCP443, **B),
            assign("b/o2", ("198.51.100.0",), requested_ips=["198.51.100.0"], sharing_key="o",
                   ports=(("TCP", 8080),), **B),
        ]),
    "a share across namespaces that already exists is kept (upgrade, restart); it admits no new namespace": (
        [pool("closed", "203.0.113.0/30")], [
            restore("a/web", ["203.0.113.0"], sharing_key="k", ports=TCP80, **A),
            restore("c/x", ["203.0.113.0"], sharing_key="k", ports=(("TCP", 8080),), namespace="c"),
            assign("c/x", ("203.0.113.0",), reason=AllocationReason.UNCHANGED, sharing_key="k",
                   ports=(("TCP", 8080),), namespace="c"),
            assign("b/web", reason=AllocationReason.SHARING_INCOMPATIBLE, requested_ips=["203.0.113.0"],
                   sharing_key="k", ports=TCP443, **B),
            restore("d/y", ["203.0.113.0"], reason=AllocationReason.SHARING_INCOMPATIBLE, sharing_key="k",
                    ports=TCP80, namespace="d"),
        ]),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    """Run the scenario's steps in order against one allocator with a reuse delay and a fake clock."""
    pools, steps = SCENARIOS[name]
    alloc = Allocator(reuse_delay=DELAY, clock=FakeClock())
    assert alloc.set_pools(pools) == []
    for i, step in enumerate(steps):
        run_step(alloc, step, f"{name}: step {i} ({step.op})")


def test_holds_are_re_registered_after_a_restart_and_end_with_their_pool() -> None:
    """A hold recorded before a restart refuses other namespaces; one on a taken, uncovered or past IP is not
    made; a pool shrink ends the holds it no longer covers."""
    clock = FakeClock()
    alloc = Allocator(reuse_delay=DELAY, clock=clock)
    alloc.set_pools([pool("p", "203.0.113.0/30")])
    assert alloc.assign(ServiceRequest("a/x", "a", requested_ips=["203.0.113.3"])).ok
    assert alloc.hold("203.0.113.0", "a", "a/web", "p", 50.0)
    assert not alloc.hold("203.0.113.3", "a", "a/x", "p", 50.0)  # taken
    assert not alloc.hold("192.0.2.1", "a", "a/web", "p", 50.0)  # in no pool
    assert not alloc.hold("203.0.113.1", "a", "a/web", "p", 0.0)  # already over
    assert not alloc.hold("bogus", "a", "a/web", "p", 50.0)
    assert alloc.assign(ServiceRequest("b/y", "b", requested_ips=["203.0.113.0"])).reason is HELD
    assert alloc.assign(ServiceRequest("b/z", "b")).ips == ("203.0.113.1",)
    assert [int_to_ip(*h.ip) for h in alloc.holds_in("p")] == ["203.0.113.0"]
    assert alloc.holds.next_end() == 50.0
    alloc.set_pools([pool("p", "203.0.113.1-203.0.113.3")])
    assert alloc.holds_in("p") == [] and alloc.holds.next_end() is None
    assert alloc.pool_stats("p")[V4] == (3, 2, 1)


def test_without_a_reuse_delay_nothing_is_held() -> None:
    """The default allocator (no delay) frees a released IP at once, as before."""
    alloc = Allocator()
    alloc.set_pools([pool("p", "203.0.113.0/31")])
    assert alloc.assign(ServiceRequest("a/x", "a")).ips == ("203.0.113.0",)
    alloc.release("a/x")
    assert alloc.assign(ServiceRequest("b/y", "b", requested_ips=["203.0.113.0"])).ok
    assert len(alloc.holds) == 0
