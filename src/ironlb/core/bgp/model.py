"""The FRR-facing model: peers, BFD profiles and announcements, as frozen values the driver renders.

It is IronLB's own model, not the CRDs': the API's BGPPeer, BFDProfile and BGPAdvertisement objects are turned
into it by whoever feeds the speaker, so the driver and its tests never depend on how the CRs are parsed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ironlb.core.bgp.index import announcements_of

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*$")
DEFAULT_PORT = 179
# bgpd's `bgp route-map delay-timer`, seconds. FRR's default (5) holds a new neighbor's updates that long, and
# prefix-list changes (a peer's exclusions) wait for it. 0 is worse on FRR 8.4: a changed prefix-list may then
# never be applied, so an exclusion never reaches the peer. One second is the least that still applies it.
ROUTE_MAP_DELAY_S = 1


class Family(Enum):
    """An address family, by the suffix FRR's object names carry."""

    V4 = "4"
    V6 = "6"


def family_of(prefix: str) -> Family:
    """V6 for an IPv6 prefix, V4 otherwise."""
    return Family.V6 if ":" in prefix else Family.V4


def session_carries(disable_mp: bool, address: str | None, family: Family) -> bool:
    """Whether a session to ADDRESS carries FAMILY's routes: every family (multiprotocol), unless DISABLE_MP keeps
    it to its address's own; an unnumbered session (no address) carries every family."""
    return not disable_mp or not address or family_of(address) is family


class DynamicAsn(Enum):
    """A peer ASN left to the session: FRR's `remote-as internal|external`."""

    INTERNAL = "internal"
    EXTERNAL = "external"


@dataclass(frozen=True)
class BfdProfile:
    """A BFD profile (MetalLB's fields); intervals in milliseconds."""

    name: str
    receive_interval_ms: int = 300
    transmit_interval_ms: int = 300
    detect_multiplier: int = 3
    echo_interval_ms: int | None = None
    passive_mode: bool = False
    minimum_ttl: int | None = None


@dataclass(frozen=True)
class Peer:
    """One BGP session of this node; `name` is unique and names its FRR objects (route-map, prefix-lists)."""

    name: str
    my_asn: int
    peer_asn: int | None = None
    dynamic_asn: DynamicAsn | None = None
    address: str | None = None
    interface: str | None = None
    port: int = DEFAULT_PORT
    source_address: str | None = None
    router_id: str | None = None
    hold_time_s: int | None = None
    keepalive_time_s: int | None = None
    connect_time_s: int | None = None
    password: str | None = None
    ebgp_multihop: bool = False
    bfd_profile: str | None = None
    graceful_restart: bool = False
    vrf: str = ""
    disable_mp: bool = False  # the session carries only its address's family (an unnumbered one carries both)

    def __post_init__(self) -> None:
        if self.disable_mp and not self.address:  # nothing to limit: read back as False, so it must be False
            object.__setattr__(self, "disable_mp", False)
        # FRR holds both timers or neither: fill the other one as FRR would, so FRR's config reads back equal.
        if self.hold_time_s is not None and self.keepalive_time_s is None:
            object.__setattr__(self, "keepalive_time_s", self.hold_time_s // 3)
        elif self.keepalive_time_s is not None and self.hold_time_s is None:
            object.__setattr__(self, "hold_time_s", 3 * self.keepalive_time_s)

    @property
    def neighbor(self) -> str:
        """How FRR names the neighbor: its address, or the interface of an unnumbered session."""
        return self.address or self.interface or ""

    @property
    def remote_as(self) -> str:
        """FRR's remote-as argument: the ASN, or internal/external when it is dynamic."""
        return self.dynamic_asn.value if self.dynamic_asn else str(self.peer_asn)

    def carries(self, family: Family) -> bool:
        """Whether the session carries FAMILY's routes (session_carries)."""
        return session_carries(self.disable_mp, self.address, family)

    @property
    def families(self) -> tuple[Family, ...]:
        """The address families the session is activated in."""
        return tuple(f for f in Family if self.carries(f))


@dataclass(frozen=True)
class Attributes:
    """What a route carries to a peer besides its prefix."""

    local_pref: int | None = None
    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()
    next_hop: str | None = None  # another node's address, announced on its behalf (core.bgp.proxy)

    @staticmethod
    def of(local_pref: int | None = None, communities: Iterable[str] = (),
           large_communities: Iterable[str] = (), next_hop: str | None = None) -> Attributes:
        """Attributes with the communities sorted and without repeats (so equal sets compare equal)."""
        return Attributes(local_pref, tuple(sorted(set(communities))), tuple(sorted(set(large_communities))),
                          next_hop)

    def merged(self, other: Attributes) -> Attributes:
        """Two advertisements of one prefix to one peer: communities united, the higher localPref kept."""
        prefs = [p for p in (self.local_pref, other.local_pref) if p is not None]
        return Attributes.of(max(prefs, default=None), self.communities + other.communities,
                             self.large_communities + other.large_communities, self.next_hop or other.next_hop)

    @property
    def group(self) -> str:
        """A short stable name of this attribute set (names the prefix-lists that carry it)."""
        text = f"{self.local_pref}|{','.join(self.communities)}|{','.join(self.large_communities)}"
        if self.next_hop:  # sets without one keep their names
            text += f"|{self.next_hop}"
        return "g" + hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Announcement:
    """A prefix this node announces, the peers (by name) it goes to, and what it carries."""

    prefix: str
    peers: frozenset[str]
    attributes: Attributes = Attributes()


@dataclass(frozen=True)
class Desired:
    """What FRR should hold: peers and profiles by name, announcements, whether this node is draining, and bgpd's
    route-map delay timer (global: set with the first router, back to FRR's default with the last).

    As what FRR holds (read back, or applied), it also names its stray attribute sets: route-maps that no
    network uses, which the next full diff removes. A desired state has none. What the driver applied also
    counts each set's networks (`set_users`), so that a partial diff can tell when a set's last user goes;
    None: not counted (a desired state, a read-back), counted once when a partial diff needs it.
    """

    peers: Mapping[str, Peer] = field(default_factory=dict)
    profiles: Mapping[str, BfdProfile] = field(default_factory=dict)
    announcements: Sequence[Announcement] = ()  # a tuple, or core.bgp.index.Announcements (found by prefix)
    graceful_shutdown: bool = False
    stray_sets: frozenset[str] = frozenset()  # attribute-set names (`Attributes.group`)
    # bgpd's route-map delay timer while a router is configured; read back: what FRR holds (None: its default)
    route_map_delay_s: int | None = ROUTE_MAP_DELAY_S
    # attribute-set name -> the networks that use it (a set no network uses is absent); derived, so not compared
    set_users: Mapping[str, int] | None = field(default=None, compare=False)

    @staticmethod
    def of(peers: Iterable[Peer] = (), profiles: Iterable[BfdProfile] = (),
           announcements: Iterable[Announcement] = (), graceful_shutdown: bool = False) -> Desired:
        """A Desired from lists (peers and profiles keyed by name)."""
        return Desired({p.name: p for p in peers}, {p.name: p for p in profiles}, tuple(announcements),
                       graceful_shutdown)

    def routers(self) -> dict[str, Router]:
        """One FRR `router bgp` per VRF: its ASN and router id are those of the VRF's first peer by name."""
        routers: dict[str, Router] = {}
        for peer in sorted(self.peers.values(), key=lambda p: p.name):
            routers.setdefault(peer.vrf, Router(peer.vrf, peer.my_asn, peer.router_id))
        return routers

    def usable_peers(self) -> dict[str, Peer]:
        """The peers FRR can hold: a peer whose myASN differs from its VRF's router is left out (see conflicts)."""
        routers = self.routers()
        return {n: p for n, p in self.peers.items() if routers[p.vrf].asn == p.my_asn}

    def conflicts(self) -> list[str]:
        """Names of the peers left out because their VRF already speaks another ASN."""
        return sorted(set(self.peers) - set(self.usable_peers()))

    def routes(self, prefixes: Iterable[str] | None = None) -> dict[tuple[str, str], Attributes]:
        """(peer, prefix) -> attributes for the usable peers whose session carries the prefix's family, limited to
        PREFIXES when given."""
        usable = self.usable_peers()
        routes: dict[tuple[str, str], Attributes] = {}
        for ann in announcements_of(self.announcements, None if prefixes is None else set(prefixes)):
            family = family_of(ann.prefix)
            for peer in ann.peers:
                if peer in usable and usable[peer].carries(family):
                    key = (peer, ann.prefix)
                    routes[key] = routes[key].merged(ann.attributes) if key in routes else ann.attributes
        return routes


@dataclass(frozen=True)
class Router:
    """FRR's `router bgp ASN [vrf NAME]`."""

    vrf: str
    asn: int
    router_id: str | None = None
