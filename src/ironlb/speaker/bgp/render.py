"""FRR commands for typed changes: one batch per daemon, entered from `configure terminal`.

The whole config at start is the rendering of the changes from nothing; after that each change set (an announce,
a withdraw) is one small batch. Every name IronLB gives an FRR object starts with ILB- so what it owns is plain.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

from ironlb.core.bgp.diff import (
    AttributesRemoved,
    AttributesSet,
    Change,
    ExclusionAdded,
    ExclusionRemoved,
    InPolicyRemoved,
    NetworkAdded,
    NetworkRemoved,
    PeerAdded,
    PeerChanged,
    PeerRemoved,
    ProfileRemoved,
    ProfileSet,
    RouteMapDelaySet,
    RouterRemoved,
    RouterSet,
)
from ironlb.core.bgp.model import DEFAULT_PORT, Attributes, BfdProfile, Family, Peer, Router, family_of

IN_ROUTE_MAP = "ILB-IN"  # a node takes no route from its peers
OUT_ROUTE_MAP = "ILB-OUT-"
ATTRIBUTES_ROUTE_MAP = "ILB-A-"
ROUTE_MAP_DELAY = "bgp route-map delay-timer"
DESCRIPTION = "ilb:"  # a neighbor's description names IronLB's peer, so a restart can read it back
AFS = {Family.V4: "address-family ipv4 unicast", Family.V6: "address-family ipv6 unicast"}
EXITS = {"address-family": "exit-address-family"}


class Daemon(Enum):
    """The FRR daemon whose vty takes a batch."""

    BGPD = "bgpd"
    BFDD = "bfdd"


@dataclass(frozen=True)
class Batch:
    """Commands for one daemon, run between `configure terminal` and `end`."""

    daemon: Daemon
    commands: tuple[str, ...]


Context = tuple[str, ...]
Line = tuple[Context, str | None]  # a command in its context; None only enters the context


def render(changes: Iterable[Change]) -> list[Batch]:
    """The batches for CHANGES: BFD profiles set first, then bgpd's batch, then profiles removed."""
    changes = list(changes)
    first = [c for c in changes if isinstance(c, ProfileSet)]
    last = [c for c in changes if isinstance(c, ProfileRemoved)]
    middle = [c for c in changes if not isinstance(c, ProfileSet | ProfileRemoved)]
    batches = [Batch(Daemon.BFDD, _walk(first)), Batch(Daemon.BGPD, _walk(middle)), Batch(Daemon.BFDD, _walk(last))]
    return [b for b in batches if b.commands]


def _walk(changes: list[Change]) -> tuple[str, ...]:
    """Commands with context moves only where the context changes (10,000 networks enter their router once)."""
    out: list[str] = []
    here: Context = ()
    for change in changes:
        for ctx, cmd in lines(change):
            if ctx != here or cmd is None:
                common = 0
                while common < min(len(here), len(ctx)) and here[common] == ctx[common] and cmd is not None:
                    common += 1
                out += [EXITS.get(h.split()[0], "exit") for h in reversed(here[common:])]
                out += list(ctx[common:])
                here = ctx
            if cmd is not None:
                out.append(cmd)
    out += [EXITS.get(h.split()[0], "exit") for h in reversed(here)]
    return tuple(out)


def router_line(router: Router) -> str:
    """`router bgp ASN [vrf NAME]`."""
    return f"router bgp {router.asn}" + (f" vrf {router.vrf}" if router.vrf else "")


def exclusions(peer: str, family: Family) -> str:
    """The prefix-list of the prefixes a peer must not get (only those no advertisement gives it)."""
    return f"ILB-{peer}-X-{family.value}"


def _ip(family: Family) -> str:
    return "ipv6" if family is Family.V6 else "ip"


def lines(change: Change) -> Iterator[Line]:
    """The commands of one change, each in its context."""
    if isinstance(change, ProfileSet):
        yield from _profile(change.profile)
    elif isinstance(change, ProfileRemoved):
        yield ("bfd",), f"no profile {change.name}"
    elif isinstance(change, RouterSet):
        yield from _router(change.router, change.graceful_shutdown)
    elif isinstance(change, RouterRemoved):
        yield (), f"no {router_line(change.router)}"
    elif isinstance(change, InPolicyRemoved):
        yield (), f"no route-map {IN_ROUTE_MAP}"
    elif isinstance(change, RouteMapDelaySet):
        yield (), f"no {ROUTE_MAP_DELAY}" if change.seconds is None else f"{ROUTE_MAP_DELAY} {change.seconds}"
    elif isinstance(change, PeerAdded):
        yield from _peer_added(change.peer)
    elif isinstance(change, PeerChanged):
        yield from _peer_changed(change.old, change.new)
    elif isinstance(change, PeerRemoved):
        yield (_router_of(change.peer),), f"no neighbor {change.peer.neighbor}"
        yield (), f"no route-map {OUT_ROUTE_MAP}{change.peer.name}"
    elif isinstance(change, AttributesSet):
        yield from _attributes(change.group, change.attributes)
    elif isinstance(change, AttributesRemoved):
        yield (), f"no route-map {ATTRIBUTES_ROUTE_MAP}{change.group}"
    elif isinstance(change, ExclusionAdded | ExclusionRemoved):
        family = family_of(change.prefix)
        no = "no " if isinstance(change, ExclusionRemoved) else ""
        yield (), f"{no}{_ip(family)} prefix-list {exclusions(change.peer, family)} permit {change.prefix}"
    elif isinstance(change, NetworkAdded):
        yield (router_line(change.router), AFS[family_of(change.prefix)]), \
            f"network {change.prefix} route-map {ATTRIBUTES_ROUTE_MAP}{change.group}"
    elif isinstance(change, NetworkRemoved):
        yield (router_line(change.router), AFS[family_of(change.prefix)]), f"no network {change.prefix}"


def _profile(p: BfdProfile) -> Iterator[Line]:
    ctx = ("bfd", f"profile {p.name}")
    yield ctx, f"receive-interval {p.receive_interval_ms}"
    yield ctx, f"transmit-interval {p.transmit_interval_ms}"
    yield ctx, f"detect-multiplier {p.detect_multiplier}"
    if p.echo_interval_ms is not None:
        yield ctx, "echo-mode"
        yield ctx, f"echo transmit-interval {p.echo_interval_ms}"
    else:
        yield ctx, "no echo-mode"
    yield ctx, "passive-mode" if p.passive_mode else "no passive-mode"
    yield ctx, f"minimum-ttl {p.minimum_ttl}" if p.minimum_ttl is not None else "no minimum-ttl"


def _router(router: Router, graceful_shutdown: bool) -> Iterator[Line]:
    ctx = (router_line(router),)
    yield ctx, "no bgp ebgp-requires-policy"  # IronLB's route-maps are the policy
    yield ctx, "no bgp default ipv4-unicast"
    yield ctx, "no bgp network import-check"  # a VIP is not a route of the node
    yield ctx, f"bgp router-id {router.router_id}" if router.router_id else "no bgp router-id"
    yield ctx, "bgp graceful-shutdown" if graceful_shutdown else "no bgp graceful-shutdown"
    yield (f"route-map {IN_ROUTE_MAP} deny 10",), None


def _router_of(peer: Peer) -> str:
    return router_line(Router(peer.vrf, peer.my_asn))


def peer_settings(p: Peer) -> dict[str, str]:
    """A neighbor's settings that change in place: setting -> its command."""
    n = p.neighbor
    settings = {"description": f"neighbor {n} description {DESCRIPTION}{p.name}"}
    if p.port != DEFAULT_PORT:
        settings["port"] = f"neighbor {n} port {p.port}"
    if p.source_address:
        settings["source"] = f"neighbor {n} update-source {p.source_address}"
    if p.hold_time_s is not None or p.keepalive_time_s is not None:
        hold = p.hold_time_s if p.hold_time_s is not None else 3 * (p.keepalive_time_s or 0)
        keepalive = p.keepalive_time_s if p.keepalive_time_s is not None else hold // 3
        settings["timers"] = f"neighbor {n} timers {keepalive} {hold}"
    if p.connect_time_s is not None:
        settings["connect"] = f"neighbor {n} timers connect {p.connect_time_s}"
    if p.password:
        settings["password"] = f"neighbor {n} password {p.password}"
    if p.ebgp_multihop:
        settings["multihop"] = f"neighbor {n} ebgp-multihop 255"
    if p.bfd_profile:
        settings["bfd"] = f"neighbor {n} bfd"
        settings["bfd-profile"] = f"neighbor {n} bfd profile {p.bfd_profile}"
    if p.graceful_restart:
        settings["graceful-restart"] = f"neighbor {n} graceful-restart"
    return settings


def _peer_added(p: Peer) -> Iterator[Line]:
    ctx = (_router_of(p),)
    if p.interface and not p.address:
        yield ctx, f"neighbor {p.interface} interface remote-as {p.remote_as}"
    else:
        yield ctx, f"neighbor {p.neighbor} remote-as {p.remote_as}"
    for cmd in peer_settings(p).values():
        yield ctx, cmd
    yield from _out_route_map(p.name)
    for af in (AFS[f] for f in p.families):
        yield (*ctx, af), f"neighbor {p.neighbor} activate"
        yield (*ctx, af), f"neighbor {p.neighbor} route-map {IN_ROUTE_MAP} in"
        yield (*ctx, af), f"neighbor {p.neighbor} route-map {OUT_ROUTE_MAP}{p.name} out"


def _peer_changed(old: Peer, new: Peer) -> Iterator[Line]:
    ctx = (_router_of(new),)
    if old.remote_as != new.remote_as:
        yield ctx, f"neighbor {new.neighbor} remote-as {new.remote_as}"
    before, after = peer_settings(old), peer_settings(new)
    for key in ("bfd-profile", "bfd"):  # the profile goes before BFD itself
        if key in before and key not in after:
            yield ctx, f"no {before.pop(key)}"
    for key, cmd in before.items():
        if key not in after:
            yield ctx, f"no {cmd}"
    for key, cmd in after.items():
        if before.get(key) != cmd:
            yield ctx, cmd
    if old.name != new.name:
        yield from _out_route_map(new.name)
        for af in (AFS[f] for f in new.families):
            yield (*ctx, af), f"neighbor {new.neighbor} route-map {OUT_ROUTE_MAP}{new.name} out"


def _out_route_map(peer: str) -> Iterator[Line]:
    """A peer's way out: its exclusions denied, every other originated prefix let through."""
    for seq, family in ((10, Family.V4), (20, Family.V6)):
        yield (f"route-map {OUT_ROUTE_MAP}{peer} deny {seq}",), \
            f"match {_ip(family)} address prefix-list {exclusions(peer, family)}"
    yield (f"route-map {OUT_ROUTE_MAP}{peer} permit 100",), None


def _attributes(group: str, attrs: Attributes) -> Iterator[Line]:
    ctx = (f"route-map {ATTRIBUTES_ROUTE_MAP}{group} permit 10",)
    yield ctx, None
    if attrs.local_pref is not None:
        yield ctx, f"set local-preference {attrs.local_pref}"
    if attrs.communities:
        yield ctx, f"set community {' '.join(attrs.communities)} additive"
    if attrs.large_communities:
        yield ctx, f"set large-community {' '.join(attrs.large_communities)} additive"
    if attrs.next_hop:
        yield ctx, next_hop_command(attrs.next_hop)


def next_hop_command(address: str) -> str:
    """The route-map command that makes ADDRESS a prefix's next hop (a path announced on another node's behalf)."""
    return f"set ipv6 next-hop global {address}" if ":" in address else f"set ip next-hop {address}"
