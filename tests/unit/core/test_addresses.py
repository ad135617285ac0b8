"""Address specs: parsing, merging, errors a person can act on; pool overlap detection."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ironlb.core.addresses import (
    AddrRange,
    family_of,
    int_to_ip,
    ip_to_int,
    is_buggy,
    packed_ip,
    parse_ranges,
    parse_spec,
)
from ironlb.core.errors import AddressSpecError
from ironlb.core.pools import Pool, find_overlaps

V4, V6 = "IPv4", "IPv6"


@pytest.mark.parametrize(("spec", "first", "last", "size"), [
    ("203.0.113.0/24", "203.0.113.0", "203.0.113.255", 256),
    ("203.0.113.7", "203.0.113.7", "203.0.113.7", 1),
    ("203.0.113.7/32", "203.0.113.7", "203.0.113.7", 1),
    (" 203.0.113.10 - 203.0.113.20 ", "203.0.113.10", "203.0.113.20", 11),
    ("203.0.113.5-203.0.113.5", "203.0.113.5", "203.0.113.5", 1),
    ("198.19.0.250-198.19.1.5", "198.19.0.250", "198.19.1.5", 12),
    ("2001:db8::/64", "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff", 2**64),
    ("2001:db8::1-2001:db8::ff", "2001:db8::1", "2001:db8::ff", 255),
    ("2001:db8::/128", "2001:db8::", "2001:db8::", 1),
])
def test_parse_spec_valid(spec: str, first: str, last: str, size: int) -> None:
    """CIDRs, single IPs and A-B ranges become inclusive integer ranges of the right family."""
    r = parse_spec(spec)
    assert (r.family, r.first, r.last) == (family_of(first), *[ip_to_int(x)[1] for x in (first, last)])
    assert r.size == size
    assert str(r) == f"{first}-{last}"


@pytest.mark.parametrize(("spec", "words"), [
    ("203.0.113.9-203.0.113.1", ["reversed", "203.0.113.9", "203.0.113.1"]),
    ("2001:db8::2-2001:db8::1", ["reversed"]),
    ("203.0.113.1-2001:db8::1", ["cannot mix IPv4 and IPv6"]),
    ("203.0.113.5/24", ["host bits", "203.0.113.0/24"]),
    ("2001:db8::1/64", ["host bits", "2001:db8::/64"]),
    ("banana", ["'banana'", "not a CIDR"]),
    ("203.0.113.0/33", ["'203.0.113.0/33'", "not a CIDR"]),
    ("203.0.113.256", ["not a CIDR"]),
    ("203.0.113.1-", ["both ends", "must be IP addresses"]),
    ("x-203.0.113.1", ["both ends"]),
    ("203.0.113.0/24-203.0.113.9", ["both ends"]),
    ("", ["empty"]),
    ("   ", ["empty"]),
])
def test_parse_spec_errors_say_what_is_wrong(spec: str, words: list[str]) -> None:
    """Every malformed entry raises AddressSpecError (a ValueError) naming the problem."""
    with pytest.raises(AddressSpecError) as info:
        parse_spec(spec)
    assert isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value)


def test_parse_ranges_merges_sorts_and_keeps_families_apart() -> None:
    """Touching and overlapping entries merge per family; the result is sorted."""
    ranges = parse_ranges(["2001:db8::/127", "203.0.113.128/25", "203.0.113.0/25",
                           "203.0.113.10-203.0.113.20", "2001:db8::2", "198.51.100.1"])
    v4 = [r for r in ranges if r.family == V4]
    v6 = [r for r in ranges if r.family == V6]
    assert [str(r) for r in v4] == ["198.51.100.1-198.51.100.1", "203.0.113.0-203.0.113.255"]
    assert [str(r) for r in v6] == ["2001:db8::-2001:db8::2"]
    assert ranges == sorted(ranges)


def test_parse_ranges_rejects_an_empty_list_and_bad_entries() -> None:
    """An empty list and any one bad entry are errors."""
    with pytest.raises(AddressSpecError, match="at least one"):
        parse_ranges([])
    with pytest.raises(AddressSpecError, match="reversed"):
        parse_ranges(["203.0.113.0/24", "203.0.113.9-203.0.113.1"])


def test_ip_int_round_trip_and_family() -> None:
    """Address strings and (family, int) convert both ways."""
    for ip in ("0.0.0.0", "203.0.113.255", "::", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"):
        assert int_to_ip(*ip_to_int(ip)) == ip
    assert ip_to_int("0.0.1.0") == (V4, 256)
    assert family_of("2001:db8::") == V6 and family_of("192.0.2.1") == V4
    with pytest.raises(ValueError):
        family_of("nope")


def _as_ipaddress_reads(text: object) -> bytes | type[Exception]:
    try:
        return ipaddress.ip_address(text).packed  # type: ignore[arg-type]
    except ValueError:
        return ValueError


def _read(text: object) -> bytes | type[Exception]:
    try:
        return packed_ip(text)  # type: ignore[arg-type]
    except ValueError:
        return ValueError


# Text close to a dotted quad: octets with and without leading zeros, too many or too few, signs, spaces.
_NEAR_QUAD = st.lists(st.text("0123456789+- x", min_size=0, max_size=4), min_size=1, max_size=6).map(".".join)


@given(st.one_of(_NEAR_QUAD, st.text("0123456789abcdefABCDEF.:%/ ", max_size=45), st.integers(-1, 2**129)))
@example("192.0.2.1")
@example("0.0.0.0")
@example("255.255.255.255")
@example("256.0.0.1")
@example("01.2.3.4")
@example("1.2.3")
@example("1.2.3.4.5")
@example(" 1.2.3.4")
@example("1.2.3.4\n")
@example("1.2.3.4\x00")
@example("\u0661.2.3.4")  # a digit, but not an ASCII one
@example("::ffff:192.0.2.1")
@example("fe80::1%eth0")
@example("2001:db8::1")
def test_packed_ip_reads_what_ipaddress_reads(text: object) -> None:
    """The fast path for dotted quads takes exactly what ipaddress takes, with the same bytes."""
    assert _read(text) == _as_ipaddress_reads(text)


@pytest.mark.parametrize(("ip", "buggy"), [
    ("203.0.113.0", True), ("203.0.113.255", True), ("203.0.113.1", False), ("203.0.113.254", False),
    ("2001:db8::", False), ("2001:db8::ff", False),
])
def test_is_buggy(ip: str, buggy: bool) -> None:
    """Only IPv4 .0 and .255 are buggy."""
    assert is_buggy(*ip_to_int(ip)) is buggy


def _pool(name: str, *addresses: str) -> Pool:
    return Pool(name, tuple(parse_ranges(addresses)))


def test_find_overlaps_reports_both_sides_and_only_real_overlaps() -> None:
    """Overlaps are reported once per side with the shared range; disjoint or cross-family pools are not."""
    pools = [_pool("a", "203.0.113.0/28"), _pool("b", "203.0.113.8-203.0.113.20"),
             _pool("c", "203.0.113.21/32"), _pool("d", "2001:db8::/126"), _pool("e", "2001:db8::3")]
    found = {(o.pool, o.other, str(o.shared)) for o in find_overlaps(pools)}
    assert found == {
        ("a", "b", "203.0.113.8-203.0.113.15"), ("b", "a", "203.0.113.8-203.0.113.15"),
        ("d", "e", "2001:db8::3-2001:db8::3"), ("e", "d", "2001:db8::3-2001:db8::3"),
    }
    assert find_overlaps([_pool("x", "203.0.113.0/30"), _pool("y", "203.0.113.4/30")]) == []
    assert find_overlaps([_pool("x", "0.0.0.0/0"), _pool("y", "::/0")]) == []


def test_pool_contains_and_service_allocation_flag() -> None:
    """Pool.contains checks family and bounds; has_service_allocation reflects any criterion."""
    p = _pool("p", "203.0.113.8/30", "2001:db8::/127")
    inside = [ip_to_int(ip) for ip in ("203.0.113.8", "203.0.113.11", "2001:db8::1")]
    outside = [ip_to_int(ip) for ip in ("203.0.113.7", "203.0.113.12", "2001:db8::2")]
    assert all(p.contains(*ip) for ip in inside) and not any(p.contains(*ip) for ip in outside)
    assert not p.contains(V6, ip_to_int("203.0.113.8")[1])
    assert not p.has_service_allocation
    assert Pool("q", p.ranges, namespaces=("a",)).has_service_allocation
    assert Pool("q", p.ranges, service_selectors=({"matchLabels": {"a": "b"}},)).has_service_allocation
    assert Pool("q", p.ranges, namespace_selectors=({"matchLabels": {"a": "b"}},)).has_service_allocation
    assert AddrRange(V4, 1, 1).size == 1
