"""From one Desired state to the next: an ordered list of typed changes, each rendered into FRR commands.

Peers, profiles and routers are few and compared whole; announcements are compared only for the prefixes
the caller says were touched (O(changed)), or all of them when it does not say (at start, after a restart).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from ironlb.core.bgp.model import (
    Attributes,
    BfdProfile,
    Desired,
    Family,
    Peer,
    Router,
    family_of,
    route_map_seq,
)


@dataclass(frozen=True)
class ProfileSet:
    """Create a BFD profile or rewrite its settings."""

    profile: BfdProfile


@dataclass(frozen=True)
class ProfileRemoved:
    """Delete a BFD profile."""

    name: str


@dataclass(frozen=True)
class RouterSet:
    """Create a `router bgp` (or change its router id), with its base settings."""

    router: Router
    graceful_shutdown: bool


@dataclass(frozen=True)
class RouterRemoved:
    """Delete a `router bgp`."""

    router: Router


@dataclass(frozen=True)
class PeerAdded:
    """Configure a neighbor with every setting, activated in both address families."""

    peer: Peer


@dataclass(frozen=True)
class PeerChanged:
    """Change a neighbor's settings in place (a changed ASN or VRF is a removal and an addition instead)."""

    old: Peer
    new: Peer


@dataclass(frozen=True)
class PeerRemoved:
    """Delete a neighbor (FRR closes its session with a Cease)."""

    peer: Peer


@dataclass(frozen=True)
class PolicyAdded:
    """A route-map entry on a peer's way out: routes of one attribute group, one family, carry these attributes."""

    peer: str
    group: str
    family: Family
    seq: int
    attributes: Attributes


@dataclass(frozen=True)
class PolicyRemoved:
    """Delete a peer's route-map entry and the prefix-list behind it."""

    peer: str
    group: str
    family: Family
    seq: int


@dataclass(frozen=True)
class RouteAdded:
    """Let PREFIX out to PEER in attribute group GROUP (an entry of the group's prefix-list)."""

    peer: str
    group: str
    prefix: str


@dataclass(frozen=True)
class RouteRemoved:
    """Stop PREFIX from going out to PEER in GROUP."""

    peer: str
    group: str
    prefix: str


@dataclass(frozen=True)
class NetworkAdded:
    """Originate PREFIX in the router of VRF (`network`): it goes out to the peers whose lists allow it."""

    router: Router
    prefix: str


@dataclass(frozen=True)
class NetworkRemoved:
    """Stop originating PREFIX: withdrawn from every peer of the VRF at once."""

    router: Router
    prefix: str


Change = (ProfileSet | ProfileRemoved | RouterSet | RouterRemoved | PeerAdded | PeerChanged | PeerRemoved
          | PolicyAdded | PolicyRemoved | RouteAdded | RouteRemoved | NetworkAdded | NetworkRemoved)


def diff(old: Desired, new: Desired, touched: Iterable[str] | None = None) -> list[Change]:
    """The changes that turn OLD into NEW, in an order FRR accepts; TOUCHED: the only prefixes that may differ."""
    prefixes = None if touched is None else set(touched)
    old_peers, new_peers = old.usable_peers(), new.usable_peers()
    old_routers, new_routers = old.routers(), new.routers()
    gone, replaced, added, changed = _peer_changes(old_peers, new_peers)
    rebuilt = [r for v, r in sorted(old_routers.items()) if v in new_routers and new_routers[v].asn != r.asn]
    changes: list[Change] = [ProfileSet(p) for n, p in sorted(new.profiles.items()) if old.profiles.get(n) != p]
    # A neighbor whose session changes identity, or a router whose ASN changes, goes before it comes back.
    changes += [PeerRemoved(p) for p in replaced] + [RouterRemoved(r) for r in rebuilt]
    changes += [RouterSet(r, new.graceful_shutdown) for v, r in sorted(new_routers.items())
                if old_routers.get(v) != r or old.graceful_shutdown != new.graceful_shutdown]
    changes += [PeerAdded(p) for p in added] + changed
    if gone or added:
        prefixes = None  # a peer's whole route set comes or goes with it
    changes += _route_changes(old, new, old.routes(prefixes), new.routes(prefixes), prefixes is None)
    changes += [PeerRemoved(p) for p in gone]
    changes += [RouterRemoved(r) for v, r in sorted(old_routers.items()) if v not in new_routers]
    changes += [ProfileRemoved(n) for n in sorted(old.profiles) if n not in new.profiles]
    return changes


def _peer_changes(old: dict[str, Peer], new: dict[str, Peer]
                  ) -> tuple[list[Peer], list[Peer], list[Peer], list[Change]]:
    """Peers gone, peers replaced (removed, then added back), peers added (new or replaced), peers changed."""
    gone, replaced, added, changed = [], [], [], []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if _without_router_id(before) == _without_router_id(after):
            continue  # the router id is the router's (RouterSet), not the neighbor's
        if before is not None and after is not None and _same_session(before, after):
            changed.append(PeerChanged(before, after))
            continue
        if before is not None:
            (replaced if after is not None else gone).append(before)
        if after is not None:
            added.append(after)
    # A neighbor that moves from one peer name to another is removed before it is added back.
    moving = {(p.vrf, p.neighbor) for p in added}
    replaced += [p for p in gone if (p.vrf, p.neighbor) in moving]
    gone = [p for p in gone if (p.vrf, p.neighbor) not in moving]
    return gone, replaced, added, changed


def _without_router_id(peer: Peer | None) -> Peer | None:
    return replace(peer, router_id=None) if peer is not None else None


def _same_session(a: Peer, b: Peer) -> bool:
    return (a.neighbor, a.vrf, a.my_asn) == (b.neighbor, b.vrf, b.my_asn)


def _route_changes(old: Desired, new: Desired, old_routes: dict[tuple[str, str], Attributes],
                   new_routes: dict[tuple[str, str], Attributes], full: bool) -> list[Change]:
    """Policies and prefix-list entries per peer, then the networks of each VRF.

    A partial diff sees only some routes of a policy, so it re-adds the policies those routes use (FRR takes
    an entry it holds again as it is) and removes none: an emptied entry matches nothing, and the next full
    diff removes it.
    """
    old_policies, new_policies = _policies(old_routes), _policies(new_routes)
    adds: list[Change] = [PolicyAdded(*k, a) for k, a in sorted(new_policies.items(), key=_key)
                          if k not in old_policies or not full]
    removes: list[Change] = ([PolicyRemoved(*k) for k in sorted(old_policies, key=str) if k not in new_policies]
                             if full else [])
    route_removes: list[Change] = []
    for key in sorted(set(old_routes) | set(new_routes)):
        before, after = old_routes.get(key), new_routes.get(key)
        if before == after:
            continue
        peer, prefix = key
        if after is not None:
            adds.append(RouteAdded(peer, after.group, prefix))
        if before is not None:
            route_removes.append(RouteRemoved(peer, before.group, prefix))
    net_adds, net_removes = _network_changes(old, new, old_routes, new_routes)
    # New policies and lists first, then origination; withdrawals first, then their lists.
    return adds + net_adds + net_removes + route_removes + removes


def _key(item: tuple[tuple[str, str, Family, int], Attributes]) -> str:
    return str(item[0])


def _policies(routes: dict[tuple[str, str], Attributes]) -> dict[tuple[str, str, Family, int], Attributes]:
    """(peer, group, family, seq) -> attributes of each route-map entry the routes need."""
    policies = {}
    for (peer, prefix), attrs in routes.items():
        family = family_of(prefix)
        policies[(peer, attrs.group, family, route_map_seq(attrs.group, family))] = attrs
    return policies


def _network_changes(old: Desired, new: Desired, old_routes: dict[tuple[str, str], Attributes],
                     new_routes: dict[tuple[str, str], Attributes]) -> tuple[list[Change], list[Change]]:
    old_nets, new_nets = _networks(old, old_routes), _networks(new, new_routes)
    new_routers = {(r.vrf, r.asn) for r in new.routers().values()}
    adds: list[Change] = [NetworkAdded(new.routers()[vrf], prefix) for vrf, asn, prefix in sorted(new_nets - old_nets)]
    # A router that goes (or comes back with another ASN) takes its networks with it.
    removes: list[Change] = [NetworkRemoved(old.routers()[vrf], prefix) for vrf, asn, prefix
                             in sorted(old_nets - new_nets) if (vrf, asn) in new_routers]
    return adds, removes


def _networks(state: Desired, routes: dict[tuple[str, str], Attributes]) -> set[tuple[str, int, str]]:
    peers = state.usable_peers()
    return {(peers[peer].vrf, peers[peer].my_asn, prefix) for peer, prefix in routes if peer in peers}
