"""This node's BGP announcements when paths are announced on the carriers' behalf (`--bgp-proxy-next-hops`).

Pure: from the same BGP setting and Service every speaker reads, and this node's view of who is alive (the fast
plane's heartbeats, as the layer-2 takeover reads it), the IPv4 prefixes this node sends each peer with another
node's address as next hop (core.bgp.proxy decides whose). IPv6 prefixes are announced as without the option:
FRR keeps a third-party next hop only for IPv4 (and the lab has not shown IPv6 doing it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ironlb.core.bgp.model import Announcement, Family, family_of
from ironlb.core.bgp.proxy import carry
from ironlb.speaker.state.bgpview import BgpSetting, announcements, node_peers, usable
from ironlb.speaker.state.snapshot import ServiceInfo


def proxied(info: ServiceInfo, labels: Mapping[str, str] | None, me: str, setting: BgpSetting,
            alive: frozenset[str]) -> tuple[Announcement, ...]:
    """ME's announcements of INFO's IPs: IPv4 paths on the alive carriers' behalf, IPv6 its own as usual."""
    own = announcements(info, labels, me, setting)
    out = [a for a in own if family_of(a.prefix) is Family.V6]
    live = sorted((alive | {me}) & set(setting.nodes))
    sessions = {n: {p.name for p in node_peers(setting.config, setting.nodes[n])}
                for n in live if usable(setting.nodes[n])}
    for index, ip in enumerate(info.ips):
        if ":" in ip:
            continue
        single = ServiceInfo(info.key, (ip,), info.pool_of(index), info.traffic_policy, info.ready_nodes)
        by_node = {n: announcements(single, labels, n, setting) for n in sessions}
        for peer in sorted(sessions.get(me, ())):
            carriers = {n for n, anns in by_node.items() if any(peer in a.peers for a in anns)}
            holders = {n for n, peers in sessions.items() if peer in peers}
            whose = carry(me, carriers, holders).next_hop_of
            if whose is None:
                continue
            next_hop = None if whose == me else _ipv4_of(setting, whose)
            out += [Announcement(a.prefix, frozenset({peer}), replace(a.attributes, next_hop=next_hop))
                    for a in by_node[whose] if peer in a.peers and (next_hop or whose == me)]
    return tuple(out)


def _ipv4_of(setting: BgpSetting, node: str) -> str | None:
    """NODE's first IPv4 InternalIP: its address on the subnet it shares with the peer."""
    return next((a for a in setting.nodes[node].addresses if ":" not in a), None)
