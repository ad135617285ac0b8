"""BGP mode's objects as the speaker consumes them: BGPPeer, BFDProfile and BGPAdvertisement dicts (as the API
server returns them) turned into typed, checked dataclasses, with what admission cannot see reported as enums.

Admission (ironlb.api.bgp_crds) checks each object alone. Here they are read together, with the Secrets of
IronLB's namespace and the IPAddressPools, and every problem becomes a `Problem` whose reason is a
BGPConfigReason (the Invalid condition and the Event the operator writes), never a crash:

* a peer whose passwordSecret is missing, not of type kubernetes.io/basic-auth, or without a 'password':
  left out (a session without its password would be refused by the router anyway);
* a peer whose bfdProfile does not exist: kept, without BFD (the session still carries traffic; the
  problem says what is missing); echo mode on a multi-hop peer: kept, with echo off;
* an advertisement naming a peer or a pool that does not exist: kept (it announces to the peers that exist,
  never to "all peers" in their place); one whose aggregation length is shorter than a pool's own prefix:
  left out (the aggregate would attract traffic for addresses outside the pool);
* anything admission refuses, found in an object stored before the CRD checked it: that object left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ironlb.api.constants import (
    BGP_DEFAULT_PORT,
)
from ironlb.api.reasons import BGPConfigReason
from ironlb.core.selectors import advertisement_covers, selector_matches

Selectors = tuple[Mapping[str, Any], ...]
MAX_ASN = 4294967295
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
_SECONDS_PER_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_STANDARD = re.compile(r"([0-9]{1,5}):([0-9]{1,5})")
_LARGE = re.compile(r"large:([0-9]{1,10}):([0-9]{1,10}):([0-9]{1,10})")


class DynamicASN(Enum):
    """A peer's AS number taken from its OPEN: internal (must equal myASN) or external (must differ)."""

    INTERNAL = "internal"
    EXTERNAL = "external"


class InvalidSpec(ValueError):
    """A field that admission would have refused; the message names it."""


@dataclass(frozen=True)
class Community:
    """A BGP community: standard (two 16-bit numbers) or large (three 32-bit numbers, RFC 8092)."""

    parts: tuple[int, ...]

    @property
    def large(self) -> bool:
        return len(self.parts) == 3

    def __str__(self) -> str:
        """As the API writes it: '65000:1' or 'large:65000:1:2'."""
        return ("large:" if self.large else "") + ":".join(map(str, self.parts))


def parse_community(text: str) -> Community:
    """The community TEXT names; InvalidSpec when it is neither standard nor large."""
    if (m := _STANDARD.fullmatch(text)) and all(int(p) <= 0xFFFF for p in m.groups()):
        return Community(tuple(int(p) for p in m.groups()))
    if (m := _LARGE.fullmatch(text)) and all(int(p) <= MAX_ASN for p in m.groups()):
        return Community(tuple(int(p) for p in m.groups()))
    raise InvalidSpec(f"'{text}' is not a valid community: standard '65000:100' or large 'large:65000:1:2'")


def duration_seconds(text: str) -> int:
    """A metav1.Duration in whole seconds ('90s', '1m30s', '0s'); InvalidSpec for anything else."""
    parts = _DURATION_PART.findall(text)
    if text != "0" and (not parts or "".join(n + u for n, u in parts) != text):
        raise InvalidSpec(f"'{text}' is not a duration such as '90s' or '1m30s'")
    seconds = sum(float(n) * _SECONDS_PER_UNIT[u] for n, u in parts)
    if seconds != int(seconds):
        raise InvalidSpec(f"'{text}' is not a whole number of seconds")
    return int(seconds)


@dataclass(frozen=True)
class BFDProfileConfig:
    """A BFDProfile with FRR's defaults filled in (milliseconds)."""

    name: str
    receive_interval_ms: int = 300
    transmit_interval_ms: int = 300
    detect_multiplier: int = 3
    echo_interval_ms: int = 50
    echo_mode: bool = False
    passive_mode: bool = False
    minimum_ttl: int = 254


@dataclass(frozen=True)
class BGPPeerConfig:
    """A BGPPeer, checked, with its password read from its Secret and its BFDProfile resolved."""

    name: str
    my_asn: int
    peer_asn: int | None = None  # exactly one of peer_asn and dynamic_asn
    dynamic_asn: DynamicASN | None = None
    address: str = ""  # exactly one of address and interface
    interface: str = ""
    port: int = BGP_DEFAULT_PORT
    source_address: str = ""
    router_id: str = ""
    hold_time_s: int | None = None  # None for both: FRR's defaults; one given: the other as MetalLB derives it
    keepalive_time_s: int | None = None
    connect_time_s: int | None = None
    password: str = field(default="", repr=False)
    bfd: BFDProfileConfig | None = None
    ebgp_multihop: bool = False
    graceful_restart: bool = False
    node_selectors: Selectors = ()
    vrf: str = ""
    disable_mp: bool = False

    @property
    def ibgp(self) -> bool:
        return self.peer_asn == self.my_asn if self.peer_asn is not None else self.dynamic_asn is DynamicASN.INTERNAL

    def selects_node(self, labels: Mapping[str, str] | None) -> bool:
        """Whether a node with LABELS opens a session to this peer."""
        return _any_selects(self.node_selectors, labels)


@dataclass(frozen=True)
class BGPAdvertisementConfig:
    """A BGPAdvertisement, checked, with MetalLB's defaults (aggregation 32 / 128, every peer, every node)."""

    name: str
    pools: tuple[str, ...] = ()
    pool_selectors: Selectors = ()
    service_selectors: Selectors = ()
    node_selectors: Selectors = ()
    peers: tuple[str, ...] = ()  # empty: every peer
    aggregation_length: int = 32
    aggregation_length_v6: int = 128
    local_pref: int | None = None  # None (or 0, as in MetalLB): no LOCAL_PREF set
    communities: tuple[Community, ...] = ()

    def covers_pool(self, pool: str, labels: Mapping[str, str] | None) -> bool:
        return advertisement_covers(self.pools, self.pool_selectors, pool, labels)

    def selects_service(self, labels: Mapping[str, str] | None) -> bool:
        return _any_selects(self.service_selectors, labels)

    def selects_node(self, labels: Mapping[str, str] | None) -> bool:
        return _any_selects(self.node_selectors, labels)

    def announces_to(self, peer: str) -> bool:
        return not self.peers or peer in self.peers


def _any_selects(selectors: Selectors, labels: Mapping[str, str] | None) -> bool:
    return not selectors or any(selector_matches(s, labels) for s in selectors)


@dataclass(frozen=True)
class Problem:
    """Something wrong with one object, found when the objects are read together."""

    kind: str
    name: str
    reason: BGPConfigReason
    message: str


@dataclass
class BGPConfig:
    """Everything the speaker announces with: the usable objects by name, and the problems found."""

    peers: dict[str, BGPPeerConfig] = field(default_factory=dict)
    bfd_profiles: dict[str, BFDProfileConfig] = field(default_factory=dict)
    advertisements: dict[str, BGPAdvertisementConfig] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def problems_of(self, kind: str, name: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind and p.name == name]
