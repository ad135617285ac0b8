"""From one Desired state to the next: an ordered list of typed changes, each rendered into FRR commands.

Peers, profiles and routers are few and compared whole; announcements are compared only for the prefixes
the caller says were touched (O(changed)), or all of them when it does not say (at start, after a restart).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ironlb.core.bgp.model import (
    Attributes,
    BfdProfile,
    Desired,
    Peer,
    Router,
    family_of,
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
    """Configure a neighbor with every setting, activated in the address families it carries."""

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
class InPolicyRemoved:
    """Delete the inbound policy the routers share (`RouterSet` makes it): the last router went."""


@dataclass(frozen=True)
class RouteMapDelaySet:
    """Set bgpd's route-map delay timer (global, for every router); None: back to FRR's default."""

    seconds: int | None


@dataclass(frozen=True)
class AttributesSet:
    """A route-map of one attribute set, applied where a prefix is originated."""

    group: str
    attributes: Attributes


@dataclass(frozen=True)
class AttributesRemoved:
    """Delete an attribute set's route-map (no prefix uses it any more)."""

    group: str


@dataclass(frozen=True)
class ExclusionAdded:
    """Keep PREFIX from PEER, a peer of its VRF that no advertisement gives it to."""

    peer: str
    prefix: str


@dataclass(frozen=True)
class ExclusionRemoved:
    """Let PREFIX out to PEER again."""

    peer: str
    prefix: str


@dataclass(frozen=True)
class NetworkAdded:
    """Originate PREFIX in ROUTER with its attribute set (`network P route-map`); also changes the set in place."""

    router: Router
    prefix: str
    group: str


@dataclass(frozen=True)
class NetworkRemoved:
    """Stop originating PREFIX: withdrawn from every peer of the VRF at once."""

    router: Router
    prefix: str


Change = (ProfileSet | ProfileRemoved | RouteMapDelaySet | RouterSet | RouterRemoved | InPolicyRemoved | PeerAdded
          | PeerChanged | PeerRemoved | AttributesSet | AttributesRemoved | ExclusionAdded | ExclusionRemoved
          | NetworkAdded | NetworkRemoved)


def diff(old: Desired, new: Desired, touched: Iterable[str] | None = None) -> list[Change]:
    """The changes that turn OLD into NEW, in an order FRR accepts; TOUCHED: the only prefixes that may differ."""
    return plan(old, new, touched)[0]


def held_after(old: Desired, new: Desired, touched: Iterable[str] | None = None) -> Desired:
    """What FRR holds once diff(OLD, NEW, TOUCHED) is applied: NEW, with its attribute sets' users counted.

    A partial diff updates the counts of the sets its prefixes used or use (what changed, and one copy of the
    few sets' counts); a set it leaves unused it removed, so it is no stray. A read-back's strays stay named
    until a full diff removes them or a partial one uses them again.
    """
    return plan(old, new, touched)[1]


def plan(old: Desired, new: Desired, touched: Iterable[str] | None = None) -> tuple[list[Change], Desired]:
    """diff(OLD, NEW, TOUCHED) and held_after(OLD, NEW, TOUCHED), from one pass over what may differ."""
    gone, replaced, added, changed = _peer_changes(old.usable_peers(), new.usable_peers())
    prefixes = _compared(touched, gone, added)
    route_changes, unused_sets, users = _route_changes(old, new, prefixes)
    changes = _ordered(old, new, (gone, replaced, added, changed), route_changes, unused_sets)
    if prefixes is None:  # USERS counts every set's networks
        return changes, replace(new, stray_sets=frozenset(), set_users=users)
    merged = {**_set_users(old), **users}
    return changes, replace(new, stray_sets=old.stray_sets - set(users),
                            set_users={g: n for g, n in merged.items() if n > 0})


def _ordered(old: Desired, new: Desired, peers: tuple[list[Peer], list[Peer], list[Peer], list[Change]],
             route_changes: list[Change], unused_sets: list[str]) -> list[Change]:
    """Every change, in an order FRR accepts (PEERS: _peer_changes' gone, replaced, added and changed)."""
    gone, replaced, added, changed = peers
    old_routers, new_routers = old.routers(), new.routers()
    rebuilt = [r for v, r in sorted(old_routers.items()) if v in new_routers and new_routers[v].asn != r.asn]
    changes: list[Change] = [ProfileSet(p) for n, p in sorted(new.profiles.items()) if old.profiles.get(n) != p]
    # A neighbor whose session changes identity, or a router whose ASN changes, goes before it comes back.
    changes += [PeerRemoved(p) for p in replaced] + [RouterRemoved(r) for r in rebuilt]
    # Before the first router and its route-maps: bgpd's delay timer holds a new neighbor until it runs out.
    if new_routers and (not old_routers or old.route_map_delay_s != new.route_map_delay_s):
        changes.append(RouteMapDelaySet(new.route_map_delay_s))
    changes += [RouterSet(r, new.graceful_shutdown) for v, r in sorted(new_routers.items())
                if old_routers.get(v) != r or old.graceful_shutdown != new.graceful_shutdown]
    changes += [PeerAdded(p) for p in added] + changed
    changes += route_changes
    changes += [PeerRemoved(p) for p in gone]
    changes += [RouterRemoved(r) for v, r in sorted(old_routers.items()) if v not in new_routers]
    if old_routers and not new_routers:  # no neighbor names it any more: nothing of IronLB's is left in bgpd
        changes += [InPolicyRemoved(), RouteMapDelaySet(None)]
    # Last: FRR must not lose a route-map before the network lines that use it, a removed router's included.
    changes += [AttributesRemoved(g) for g in unused_sets]
    changes += [ProfileRemoved(n) for n in sorted(old.profiles) if n not in new.profiles]
    return changes


def _compared(touched: Iterable[str] | None, gone: list[Peer], added: list[Peer]) -> set[str] | None:
    """The prefixes a diff compares: TOUCHED, or all of them (None) when a peer's whole route set comes or goes."""
    return None if touched is None or gone or added else set(touched)


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
    # The families a session carries are its capabilities: FRR resets it to change them, so it is added anew.
    return (a.neighbor, a.vrf, a.my_asn, a.families) == (b.neighbor, b.vrf, b.my_asn, b.families)


def _route_changes(old: Desired, new: Desired, prefixes: set[str] | None
                   ) -> tuple[list[Change], list[str], dict[str, int]]:
    """Attribute sets, exclusions and networks; the attribute sets to remove once nothing uses them; and the
    networks using each set afterwards (a full diff: every set's; a partial one: the sets its prefixes touch).

    A prefix costs one bgpd command unless some peer must not get it. A partial diff sees only some prefixes
    of an attribute set, so it re-states the sets those prefixes use (FRR takes an entry it holds again as it
    is) and removes a set its prefixes used only when OLD's count of the set's networks says none is left; a
    full diff removes every set FRR holds that no new network uses, strays included.
    """
    full = prefixes is None
    old_nets, new_nets = _networks(old, prefixes), _networks(new, prefixes)
    old_excl, new_excl = _exclusions(old, old_nets), _exclusions(new, new_nets)
    old_groups, new_groups = _groups(old_nets), _groups(new_nets)
    old_sets = dict(zip(old_groups, old_nets.values(), strict=True))
    new_sets = dict(zip(new_groups, new_nets.values(), strict=True))
    new_routers = {(r.vrf, r.asn): r for r in new.routers().values()}
    old_routers = {(r.vrf, r.asn): r for r in old.routers().values()}
    changes: list[Change] = [AttributesSet(g, a) for g, a in sorted(new_sets.items())
                             if g not in old_sets or not full]
    changes += [ExclusionAdded(*k) for k in sorted(new_excl - old_excl)]  # before a new prefix can leak
    changes += [NetworkAdded(new_routers[(v, asn)], p, a.group) for (v, asn, p), a in sorted(new_nets.items(),
                key=_net_key) if old_nets.get((v, asn, p)) != a]
    # A router that goes (or comes back with another ASN) takes its networks with it.
    changes += [NetworkRemoved(old_routers[(v, asn)], p) for (v, asn, p) in sorted(old_nets, key=str)
                if (v, asn, p) not in new_nets and (v, asn) in new_routers]
    changes += [ExclusionRemoved(*k) for k in sorted(old_excl - new_excl)]
    if full:
        return changes, sorted((set(old_sets) | old.stray_sets) - set(new_sets)), dict(Counter(new_groups))
    users = _users_after(old, old_groups, new_groups)
    return changes, sorted(g for g in old_sets if users[g] == 0), users


def _users_after(old: Desired, old_groups: list[str], new_groups: list[str]) -> dict[str, int]:
    """The networks that use each set named in OLD_GROUPS or NEW_GROUPS (the sets of some networks before and
    after) once those networks change; OLD's other networks are unchanged, and so are its counts of them."""
    users = _set_users(old)
    after: dict[str, int] = {}
    for group in old_groups:
        after[group] = after.get(group, users.get(group, 0)) - 1
    for group in new_groups:
        after[group] = after.get(group, users.get(group, 0)) + 1
    return after


def _set_users(state: Desired) -> Mapping[str, int]:
    """STATE's count of each set's networks; counted here (every network, once) when STATE has none."""
    if state.set_users is not None:
        return state.set_users
    return Counter(a.group for a in _networks(state, None).values())


def _net_key(item: tuple[tuple[str, int, str], Attributes]) -> str:
    return str(item[0])


def _networks(state: Desired, prefixes: set[str] | None) -> dict[tuple[str, int, str], Attributes]:
    """(vrf, asn, prefix) -> the prefix's attributes, merged over the peers it goes to."""
    peers = state.usable_peers()
    nets: dict[tuple[str, int, str], Attributes] = {}
    for (peer, prefix), attrs in state.routes(prefixes).items():
        key = (peers[peer].vrf, peers[peer].my_asn, prefix)
        nets[key] = nets[key].merged(attrs) if key in nets else attrs
    return nets


def _exclusions(state: Desired, nets: dict[tuple[str, int, str], Attributes]) -> set[tuple[str, str]]:
    """(peer, prefix) for each peer of a prefix's VRF that no advertisement gives it to (a session that does not
    carry the prefix's family needs none)."""
    peers = state.usable_peers()
    by_vrf: dict[str, set[str]] = {}
    for name, peer in peers.items():
        by_vrf.setdefault(peer.vrf, set()).add(name)
    given = set(state.routes({p for _, _, p in nets}))
    return {(peer, prefix) for vrf, _, prefix in nets for peer in by_vrf.get(vrf, ())
            if (peer, prefix) not in given and peers[peer].carries(family_of(prefix))}


def _groups(nets: dict[tuple[str, int, str], Attributes]) -> list[str]:
    """Each network's attribute-set name, in NETS' order (a name is a hash: computed once per network)."""
    return [a.group for a in nets.values()]
