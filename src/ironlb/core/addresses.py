"""IP math: parse pool address specs (CIDRs, single IPs, A-B ranges) into integer ranges."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from ironlb.core.errors import AddressSpecError

IPV4 = "IPv4"
IPV6 = "IPv6"


@dataclass(frozen=True, order=True)
class AddrRange:
    """An inclusive range of addresses of one family, as integers (never iterated)."""

    family: str
    first: int
    last: int

    @property
    def size(self) -> int:
        """How many addresses the range holds (a big int for IPv6)."""
        return self.last - self.first + 1

    def __str__(self) -> str:
        return f"{int_to_ip(self.family, self.first)}-{int_to_ip(self.family, self.last)}"


def family_of(ip: str) -> str:
    """IPv4 or IPv6 for an address string (raises ValueError if it is not one)."""
    return IPV4 if ipaddress.ip_address(ip).version == 4 else IPV6


def packed_ip(ip: str) -> bytes:
    """The 4 or 16 bytes of an address string, as ipaddress reads it (raises ValueError if it is not one)."""
    try:
        # The common case at a fraction of ipaddress's cost: inet_pton takes a dotted quad exactly as
        # ipaddress does (four decimal octets, none over 255, no leading zeros), and nothing else.
        return socket.inet_pton(socket.AF_INET, ip)
    except (OSError, TypeError, ValueError):
        return ipaddress.ip_address(ip).packed  # IPv6 (with its scope and forms), or no address at all


def ip_to_int(ip: str) -> tuple[str, int]:
    """(family, integer) of an address string."""
    raw = packed_ip(ip)
    return (IPV4 if len(raw) == 4 else IPV6), int.from_bytes(raw, "big")


def int_to_ip(family: str, value: int) -> str:
    """The address string of an integer in a family."""
    return str(ipaddress.IPv4Address(value) if family == IPV4 else ipaddress.IPv6Address(value))


def parse_spec(spec: str) -> AddrRange:
    """Parse one entry: "203.0.113.0/24", "2001:db8::/64", "203.0.113.7" or "A-B"."""
    text = spec.strip()
    if not text:
        raise AddressSpecError("an empty address entry is not a CIDR, an IP or an A-B range")
    if "-" in text:
        start, _, end = text.partition("-")
        try:
            a, b = ipaddress.ip_address(start.strip()), ipaddress.ip_address(end.strip())
        except ValueError:
            raise AddressSpecError(f"{spec!r}: both ends of an A-B range must be IP addresses") from None
        if a.version != b.version:
            raise AddressSpecError(f"{spec!r}: a range cannot mix IPv4 and IPv6")
        if int(a) > int(b):
            raise AddressSpecError(f"{spec!r}: the range is reversed (start {a} is after end {b})")
        return AddrRange(IPV4 if a.version == 4 else IPV6, int(a), int(b))
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise AddressSpecError(f"{spec!r} is not a CIDR, an IP address or an A-B range") from None
    if "/" in text and int(net.network_address) != int(ipaddress.ip_interface(text).ip):
        raise AddressSpecError(f"{spec!r} has host bits set; did you mean {net}?")
    return AddrRange(IPV4 if net.version == 4 else IPV6, int(net.network_address), int(net.broadcast_address))


def parse_ranges(specs: Iterable[str]) -> list[AddrRange]:
    """Parse every entry of a pool's address list; merged, sorted, and non-empty."""
    ranges = [parse_spec(s) for s in specs]
    if not ranges:
        raise AddressSpecError("a pool needs at least one address entry")
    return merge(ranges)


def merge(ranges: Iterable[AddrRange]) -> list[AddrRange]:
    """Sort ranges and merge the ones that touch or overlap (per family)."""
    out: list[AddrRange] = []
    for r in sorted(ranges):
        if out and out[-1].family == r.family and r.first <= out[-1].last + 1:
            last = out[-1]
            out[-1] = AddrRange(r.family, last.first, max(last.last, r.last))
        else:
            out.append(r)
    return out


def intersect(a: AddrRange, b: AddrRange) -> AddrRange | None:
    """The overlap of two ranges, or None."""
    if a.family != b.family:
        return None
    first, last = max(a.first, b.first), min(a.last, b.last)
    return AddrRange(a.family, first, last) if first <= last else None


def is_buggy(family: str, value: int) -> bool:
    """True for IPv4 addresses ending in .0 or .255, which some old clients mishandle."""
    return family == IPV4 and (value & 0xFF) in (0, 255)
