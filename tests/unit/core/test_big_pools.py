"""Big pools: exact big-integer counts, and nothing walks the address range."""

from __future__ import annotations

import pytest

from ironlb.core.addresses import parse_ranges
from ironlb.core.allocator import AllocationReason, Allocator, ServiceRequest
from ironlb.core.pools import Pool

V6 = "IPv6"


def make(*pools: tuple[str, list[str], bool]) -> Allocator:
    """An allocator with (name, addresses, avoid_buggy_ips) pools."""
    alloc = Allocator()
    alloc.set_pools([Pool(n, tuple(parse_ranges(a)), avoid_buggy_ips=b) for n, a, b in pools])
    return alloc


@pytest.mark.timeout(10)
@pytest.mark.parametrize("avoid_buggy_ips", [True, False], ids=["avoidBuggyIPs", "plain"])
def test_ipv6_slash_64_counts_are_exact(avoid_buggy_ips: bool) -> None:
    """A /64 reports 2**64 exactly, and each assignment or release moves the counts by one."""
    alloc = make(("v6", ["2001:db8:1::/64"], avoid_buggy_ips))  # avoidBuggyIPs means nothing for IPv6
    assert alloc.pool_stats("v6")[V6] == (2**64, 0, 2**64)
    assert alloc.assign(ServiceRequest("a", ip_families=[V6])).ips == ("2001:db8:1::",)
    top = "2001:db8:1:0:ffff:ffff:ffff:ffff"
    assert alloc.assign(ServiceRequest("b", ip_families=[V6], requested_ips=[top])).ips == (top,)
    assert alloc.assign(ServiceRequest("c", ip_families=[V6])).ips == ("2001:db8:1::1",)
    size, assigned, available = alloc.pool_stats("v6")[V6]
    assert (size, assigned, available) == (2**64, 3, 2**64 - 3)
    assert all(type(n) is int for n in (size, assigned, available))
    for key in ("a", "b", "c"):
        alloc.release(key)
    assert alloc.pool_stats("v6")[V6] == (2**64, 0, 2**64)


@pytest.mark.timeout(10)
def test_huge_ipv6_pools_never_iterate_the_range() -> None:
    """Pools of 2**96 and 2**127 addresses are configured, filled at both ends and shrunk at once."""
    alloc = make(("huge", ["2001:db8::/32"], False), ("z-half", ["8000::/1"], False))
    assert alloc.pool_stats("z-half")[V6][0] == 2**127
    assert alloc.pool_stats("huge")[V6][0] == 2**96
    last = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"
    assert alloc.restore(ServiceRequest("end", ip_families=[V6]), [last]).pool == "huge"
    got = [alloc.assign(ServiceRequest(f"s{i}", ip_families=[V6])).ips[0] for i in range(50)]
    assert got[0] == "2001:db8::" and got[-1] == "2001:db8::31"
    uncovered = alloc.set_pools([Pool("huge", tuple(parse_ranges(["2001:db8::/33"]))),
                                 Pool("z-half", tuple(parse_ranges(["8000::/1"])))])
    assert uncovered == ["end"]
    assert alloc.pool_stats("huge")[V6] == (2**95, 50, 2**95 - 50)
    alloc.set_pools([Pool("all", tuple(parse_ranges(["::/0"])))])
    assert alloc.pool_stats("all")[V6] == (2**128, 0, 2**128)
    assert alloc.assign(ServiceRequest("x", ip_families=[V6])).ips == ("::",)


@pytest.mark.timeout(10)
def test_dual_stack_with_a_slash_64() -> None:
    """PreferDualStack gets one of each family from a pool with a /30 and a /64."""
    alloc = make(("p", ["203.0.113.0/30", "2001:db8::/64"], False))
    result = alloc.assign(ServiceRequest("a", ip_families=[V6, "IPv4"], ip_family_policy="PreferDualStack"))
    assert result.reason is AllocationReason.ASSIGNED and result.ips == ("2001:db8::", "203.0.113.0")


def test_avoid_buggy_ips_count_on_a_slash_16() -> None:
    """A /16 without .0 and .255 holds 2**16 minus two per /24."""
    alloc = make(("big", ["198.19.0.0/16"], True))
    assert alloc.pool_stats("big")["IPv4"] == (2**16 - 2 * 2**8, 0, 2**16 - 2 * 2**8)
    assert alloc.assign(ServiceRequest("a", requested_ips=["198.19.7.254"])).ok
    refused = alloc.assign(ServiceRequest("b", requested_ips=["198.19.7.255"]))
    assert refused.reason is AllocationReason.REQUESTED_IP_NOT_IN_POOL
