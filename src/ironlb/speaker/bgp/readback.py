"""FRR's running config read back into a Desired, so that a restarted speaker applies only the difference.

It reads what render.py writes, in the form `show running-config` prints it; lines IronLB does not write
are left alone (they are not IronLB's).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace

from ironlb.core.bgp.model import Announcement, Attributes, BfdProfile, Desired, DynamicAsn, Family, Peer, family_of
from ironlb.speaker.bgp.render import ATTRIBUTES_ROUTE_MAP, DESCRIPTION, ROUTE_MAP_DELAY

ROUTER = re.compile(r"^router bgp (\d+)(?: vrf (\S+))?$")
EXCLUSION = re.compile(r"^ip(?:v6)? prefix-list ILB-(\S+)-X-[46] seq \d+ permit (\S+)$")
ATTRIBUTES = re.compile(rf"^route-map {ATTRIBUTES_ROUTE_MAP}(g[0-9a-f]+) permit \d+$")
DELAY = re.compile(rf"^{ROUTE_MAP_DELAY} (\d+)$")
NETWORK = re.compile(rf"^network (\S+) route-map {ATTRIBUTES_ROUTE_MAP}(g[0-9a-f]+)$")
ECHO_DEFAULT_MS = 50


@dataclass
class _Neighbor:
    settings: dict[str, str] = field(default_factory=dict)
    interface: bool = False
    families: set[Family] = field(default_factory=set)  # the address-family blocks that activate it


def blocks(text: str) -> list[tuple[str, list[str]]]:
    """Top-level stanzas of a running config: (header, its lines stripped, nested ones included)."""
    out: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line == "!" or line.startswith("exit"):
            continue
        if raw[0] != " ":
            out.append((line, []))
        elif out:
            out[-1][1].append(line)
    return out


def read_profiles(bfdd_config: str) -> list[BfdProfile]:
    """The BFD profiles of bfdd's running config (FRR leaves defaults out)."""
    profiles: list[BfdProfile] = []
    for header, body in blocks(bfdd_config):
        if header != "bfd":
            continue
        for line in body:
            words = line.split()
            if words[0] == "profile":
                profiles.append(BfdProfile(words[1]))
            elif profiles:
                profiles[-1] = _profile_setting(profiles[-1], words)
    return profiles


def _profile_setting(p: BfdProfile, words: list[str]) -> BfdProfile:
    value = int(words[-1]) if words[-1].isdigit() else None
    fields = {"receive-interval": "receive_interval_ms", "transmit-interval": "transmit_interval_ms",
              "detect-multiplier": "detect_multiplier", "minimum-ttl": "minimum_ttl"}
    if words[0] in fields:
        return replace(p, **{fields[words[0]]: value})
    if words[:2] == ["echo", "transmit-interval"]:
        return replace(p, echo_interval_ms=value)
    if words[0] == "echo-mode":  # FRR leaves its default echo interval out
        return replace(p, echo_interval_ms=p.echo_interval_ms or ECHO_DEFAULT_MS)
    if words[0] == "passive-mode":
        return replace(p, passive_mode=True)
    return p


def read_desired(bgpd_config: str, bfdd_config: str = "") -> Desired:
    """The Desired state FRR holds now (the peers IronLB described, their routes and attributes)."""
    peers: list[Peer] = []
    networks: dict[str, dict[str, str]] = defaultdict(dict)  # vrf -> prefix -> attribute set
    gshut = False
    excluded: set[tuple[str, str]] = set()  # (peer, prefix)
    attrs: dict[str, Attributes] = {}
    delay = None  # FRR prints its timer only when it is not the default
    for header, body in blocks(bgpd_config):
        if m := ROUTER.match(header):
            vrf = m.group(2) or ""
            router_peers, router_nets, router_gshut = _router(int(m.group(1)), vrf, body)
            peers += router_peers
            networks[vrf].update(router_nets)
            gshut = gshut or router_gshut
        elif m := EXCLUSION.match(header):
            excluded.add((m.group(1), m.group(2)))
        elif m := ATTRIBUTES.match(header):
            attrs[m.group(1)] = _attributes(body)
        elif m := DELAY.match(header):
            delay = int(m.group(1))
    by_vrf: dict[str, list[str]] = defaultdict(list)
    for peer in peers:
        by_vrf[peer.vrf].append(peer.name)
    announcements = []
    for vrf, nets in sorted(networks.items()):
        for prefix, group in sorted(nets.items()):
            to = frozenset(p for p in by_vrf[vrf] if (p, prefix) not in excluded)
            if to and group in attrs:
                announcements.append(Announcement(prefix, to, attrs[group]))
    # A route-map no network line names (its prefixes withdrawn) is a stray: the next full diff removes it.
    used = {group for nets in networks.values() for group in nets.values()}
    strays = frozenset(attrs) - used
    return replace(Desired.of(peers, read_profiles(bfdd_config), announcements, gshut), stray_sets=strays,
                   route_map_delay_s=delay)


def _attributes(body: list[str]) -> Attributes:
    local_pref, communities, large, next_hop = None, [], [], None
    for line in body:
        words = line.split()
        if words[:2] == ["set", "local-preference"]:
            local_pref = int(words[2])
        elif words[:2] == ["set", "community"]:
            communities = [w for w in words[2:] if w != "additive"]
        elif words[:2] == ["set", "large-community"]:
            large = [w for w in words[2:] if w != "additive"]
        elif words[:3] in (["set", "ip", "next-hop"], ["set", "ipv6", "next-hop"]):
            next_hop = words[-1]
    return Attributes.of(local_pref, communities, large, next_hop)


def _router(asn: int, vrf: str, body: list[str]) -> tuple[list[Peer], dict[str, str], bool]:
    neighbors: dict[str, _Neighbor] = defaultdict(_Neighbor)
    router_id, nets, gshut = None, {}, False
    family = Family.V4
    for line in body:
        words = line.split()
        if words[0] == "address-family":
            family = Family.V6 if words[1] == "ipv6" else Family.V4
        elif words[0] == "neighbor" and words[2:] == ["activate"]:
            neighbors[words[1]].families.add(family)
        elif words[:2] == ["bgp", "router-id"]:
            router_id = words[2]
        elif words[:2] == ["bgp", "graceful-shutdown"]:
            gshut = True
        elif m := NETWORK.match(line):
            nets[m.group(1)] = m.group(2)
        elif words[0] == "neighbor" and len(words) >= 3 and words[2] not in ("activate", "route-map"):
            nb = neighbors[words[1]]
            if words[2] == "interface":
                nb.interface = True
                words = [*words[:2], *words[3:]]
                if len(words) < 3:
                    continue
            nb.settings[words[2] if words[2:4] != ["timers", "connect"] else "connect"] = " ".join(words[3:])
            if words[2:4] == ["bfd", "profile"]:
                nb.settings["bfd-profile"] = words[4]
    peers = [p for n, nb in neighbors.items() if (p := _peer(asn, vrf, router_id, n, nb)) is not None]
    return peers, nets, gshut


def _peer(asn: int, vrf: str, router_id: str | None, neighbor: str, nb: _Neighbor) -> Peer | None:
    s = nb.settings
    description = s.get("description", "")
    if not description.startswith(DESCRIPTION) or "remote-as" not in s:
        return None  # not a neighbor IronLB configured
    remote = s["remote-as"]
    dynamic = DynamicAsn(remote) if remote in ("internal", "external") else None
    timers = s.get("timers", "").split()
    connect = s.get("connect", "").split()
    return Peer(
        name=description[len(DESCRIPTION):], my_asn=asn, peer_asn=None if dynamic else int(remote),
        dynamic_asn=dynamic, address=None if nb.interface else neighbor,
        interface=neighbor if nb.interface else None, port=int(s.get("port", "179")),
        source_address=s.get("update-source"), router_id=router_id,
        keepalive_time_s=int(timers[0]) if len(timers) == 2 else None,
        hold_time_s=int(timers[1]) if len(timers) == 2 else None,
        connect_time_s=int(connect[-1]) if connect else None, password=s.get("password"),
        ebgp_multihop="ebgp-multihop" in s, bfd_profile=s.get("bfd-profile") if "bfd" in s else None,
        graceful_restart="graceful-restart" in s, vrf=vrf,
        disable_mp=not nb.interface and nb.families == {family_of(neighbor)})
