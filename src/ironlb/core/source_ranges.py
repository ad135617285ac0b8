"""A Service's `loadBalancerSourceRanges`, parsed per family: which client networks may reach its VIPs.

An empty list leaves the VIPs open to every client. A non-empty list restricts every family of the
Service: a family none of whose entries is valid admits no client at all, since a range the user wrote
for one family says nothing about letting the other family in, and an entry that cannot be parsed must
close, never open, the Service.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from ironlb.core.addresses import IPV4, IPV6
from ironlb.core.text import printable

# An invalid entry is named in a condition and an Event: these bound what one Service can put there.
MAX_REPORTED = 5
MAX_ENTRY_CHARS = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SourceRangeProblem(Enum):
    """Why an entry of loadBalancerSourceRanges is not used."""

    NOT_A_STRING = "not-a-string"
    NOT_A_CIDR = "not-a-CIDR"


@dataclass(frozen=True)
class SourceRanges:
    """The networks allowed per family; `restricted` is False for an empty list (open to all)."""

    restricted: bool = False
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    invalid: tuple[tuple[str, SourceRangeProblem], ...] = ()  # (entry as shown, why), at most MAX_REPORTED
    invalid_count: int = 0

    def allowed(self, family: str) -> tuple[str, ...] | None:
        """The client networks of FAMILY allowed in (None: every client; empty: none)."""
        if not self.restricted:
            return None
        return self.ipv4 if family == IPV4 else self.ipv6


def shown(entry: object) -> str:
    """ENTRY as it may appear in a message: escaped (user text), bounded."""
    return printable(entry if isinstance(entry, str) else repr(entry), MAX_ENTRY_CHARS)


def _network(entry: object) -> Network | SourceRangeProblem:
    if not isinstance(entry, str):
        return SourceRangeProblem.NOT_A_STRING
    try:  # host bits are allowed, as the API server's own check allows them
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return SourceRangeProblem.NOT_A_CIDR


def parse_source_ranges(entries: Iterable[object]) -> SourceRanges:
    """Parse a loadBalancerSourceRanges list; overlapping networks are merged, invalid entries set aside."""
    nets: dict[str, list[Network]] = {IPV4: [], IPV6: []}
    invalid: list[tuple[str, SourceRangeProblem]] = []
    count = seen = 0
    for entry in entries:
        seen += 1
        net = _network(entry)
        if isinstance(net, SourceRangeProblem):
            count += 1
            if len(invalid) < MAX_REPORTED:
                invalid.append((shown(entry), net))
        else:
            nets[IPV4 if net.version == 4 else IPV6].append(net)
    if not seen:
        return SourceRanges()
    merged = {f: tuple(str(n) for n in ipaddress.collapse_addresses(v)) for f, v in nets.items()}  # type: ignore[arg-type]
    return SourceRanges(True, merged[IPV4], merged[IPV6], tuple(invalid), count)
