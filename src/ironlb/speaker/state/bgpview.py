"""BGP mode's view: the typed BGP config (ironlb.api.bgp) and the cluster view mapped to ironlb.core.bgp's model.

Pure: the control plane's feed (speaker.control.bgpfeed) hands it the parsed config, the nodes and one Service
at a time, and gets back this node's peers and profiles, and for a Service the announcements of any node.
Which node carries a Service's IP follows from the same objects on every node, so the BGPAnnounced condition
each speaker would write names the same nodes and peers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ironlb.api.bgp import BFDProfileConfig, BGPAdvertisementConfig, BGPConfig, BGPPeerConfig
from ironlb.api.reasons import BGPAnnounceReason
from ironlb.core.bgp.announce import Endpoint, decide
from ironlb.core.bgp.model import (
    Announcement,
    Attributes,
    BfdProfile,
    Desired,
    DynamicAsn,
    Peer,
    family_of,
    session_carries,
)
from ironlb.speaker.state.snapshot import EXCLUDE_LABEL, NodeInfo, ServiceInfo

FRR_DEFAULT_MINIMUM_TTL = 254  # FRR leaves its default out of the running config: the model says None for it


@dataclass(frozen=True)
class BgpSetting:
    """What every Service's announcements read besides the Service: the BGP config, the nodes, the pools' labels."""

    config: BGPConfig = field(default_factory=BGPConfig)
    nodes: Mapping[str, NodeInfo] = field(default_factory=dict)
    pool_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def peer_of(cfg: BGPPeerConfig) -> Peer:
    """A BGPPeer as FRR's model holds it."""
    return Peer(
        name=cfg.name, my_asn=cfg.my_asn, peer_asn=cfg.peer_asn,
        dynamic_asn=DynamicAsn(cfg.dynamic_asn.value) if cfg.dynamic_asn else None,
        address=cfg.address or None, interface=cfg.interface or None, port=cfg.port,
        source_address=cfg.source_address or None, router_id=cfg.router_id or None,
        hold_time_s=cfg.hold_time_s, keepalive_time_s=cfg.keepalive_time_s, connect_time_s=cfg.connect_time_s,
        password=cfg.password or None, ebgp_multihop=cfg.ebgp_multihop,
        bfd_profile=cfg.bfd.name if cfg.bfd else None, graceful_restart=cfg.graceful_restart, vrf=cfg.vrf,
        disable_mp=cfg.disable_mp)


def profile_of(cfg: BFDProfileConfig) -> BfdProfile:
    """A BFDProfile as FRR's model holds it (echo's interval only with echo mode on)."""
    return BfdProfile(
        name=cfg.name, receive_interval_ms=cfg.receive_interval_ms, transmit_interval_ms=cfg.transmit_interval_ms,
        detect_multiplier=cfg.detect_multiplier, echo_interval_ms=cfg.echo_interval_ms if cfg.echo_mode else None,
        passive_mode=cfg.passive_mode,
        minimum_ttl=None if cfg.minimum_ttl == FRR_DEFAULT_MINIMUM_TTL else cfg.minimum_ttl)


def attributes_of(adv: BGPAdvertisementConfig) -> Attributes:
    """What ADV's routes carry: localPref and communities, large ones in FRR's words (without 'large:')."""
    standard = [str(c) for c in adv.communities if not c.large]
    large = [":".join(map(str, c.parts)) for c in adv.communities if c.large]
    return Attributes.of(adv.local_pref, standard, large)


def usable(node: NodeInfo | None) -> bool:
    """Whether NODE may announce at all (it exists, is not excluded by label, has its network)."""
    return node is not None and EXCLUDE_LABEL not in node.labels and not node.network_unavailable


def node_peers(config: BGPConfig, node: NodeInfo | None) -> list[BGPPeerConfig]:
    """The BGPPeers NODE opens a session to, by name."""
    if node is None:
        return []
    return [p for _, p in sorted(config.peers.items()) if p.selects_node(node.labels)]


def node_base(setting: BgpSetting, me: str) -> Desired:
    """This node's peers and the BFD profiles they use, without announcements."""
    peers = node_peers(setting.config, setting.nodes.get(me))
    profiles = {p.bfd.name: profile_of(p.bfd) for p in peers if p.bfd is not None}
    return Desired.of([peer_of(p) for p in peers], profiles.values())


def covering(setting: BgpSetting, pool: str | None, service_labels: Mapping[str, str] | None
             ) -> list[BGPAdvertisementConfig]:
    """The BGPAdvertisements that announce a Service with SERVICE_LABELS in POOL, by name."""
    if pool is None:
        return []
    labels = setting.pool_labels.get(pool)
    return [a for _, a in sorted(setting.config.advertisements.items())
            if a.covers_pool(pool, labels) and a.selects_service(service_labels)]


def announcements(info: ServiceInfo, service_labels: Mapping[str, str] | None, node: str,
                  setting: BgpSetting) -> tuple[Announcement, ...]:
    """NODE's announcements of INFO's IPs: one per IP and advertisement that selects NODE and names a peer of it."""
    covered = _Covered.of(info, service_labels, setting)
    return covered.announcements(covered.per_ip(node, setting))


Carriers = dict[str, dict[str, tuple[str, ...]]]  # IP -> node -> peers


def carriers(info: ServiceInfo, service_labels: Mapping[str, str] | None, setting: BgpSetting
             ) -> tuple[BGPAnnounceReason, Carriers]:
    """Every node that announces one of INFO's IPs and the peers it sends it to; the condition's reason."""
    return _Covered.of(info, service_labels, setting).carriers(setting, {})


def announcements_and_carriers(info: ServiceInfo, service_labels: Mapping[str, str] | None, node: str,
                               setting: BgpSetting) -> tuple[tuple[Announcement, ...], BGPAnnounceReason, Carriers]:
    """NODE's `announcements` of INFO and its `carriers`, found together: NODE's part of the carriers is what its
    announcements are made of, worked out once."""
    covered = _Covered.of(info, service_labels, setting)
    mine = covered.per_ip(node, setting)
    return (covered.announcements(mine), *covered.carriers(setting, {node: mine}))


Carried = list[tuple[frozenset[str], BGPAdvertisementConfig, tuple[str, ...]]]  # (peers, advertisement, prefixes)


@dataclass(frozen=True)
class _Covered:
    """What a Service's announcements read of it, the same for every node: found once, asked of each node."""

    ips: tuple[str, ...]
    advertisements: tuple[list[BGPAdvertisementConfig], ...]  # parallel to ips: those covering the IP's pool
    local: bool
    endpoints: tuple[Endpoint, ...]

    @staticmethod
    def of(info: ServiceInfo, service_labels: Mapping[str, str] | None, setting: BgpSetting) -> _Covered:
        """INFO's IPs, the advertisements that cover each, its policy and its ready endpoints."""
        return _Covered(info.ips, tuple(covering(setting, info.pool_of(i), service_labels)
                                        for i in range(len(info.ips))),
                        info.traffic_policy == "Local", tuple(Endpoint(n, ready=True) for n in info.ready_nodes))

    @staticmethod
    def announcements(per_ip: list[Carried]) -> tuple[Announcement, ...]:
        """A node's announcements from what it carries of each IP, in IP then advertisement order."""
        return tuple(Announcement(prefix, to, attributes_of(adv)) for carried in per_ip
                     for to, adv, prefixes in carried for prefix in prefixes)

    def carriers(self, setting: BgpSetting, known: Mapping[str, list[Carried]]) -> tuple[BGPAnnounceReason, Carriers]:
        """Every node carrying the IPs, and the peers (KNOWN: what some nodes carry, found already); the reason."""
        found: Carriers = {}
        for name in sorted(setting.nodes):
            per_ip = known[name] if name in known else self.per_ip(name, setting)
            for ip, carried in zip(self.ips, per_ip, strict=True):
                peers = sorted({p for to, _, _ in carried for p in to})
                if peers:
                    found.setdefault(ip, {})[name] = tuple(peers)
        if found:
            return BGPAnnounceReason.ADVERTISED, found
        if not any(self.advertisements):
            return BGPAnnounceReason.NO_BGP_ADVERTISEMENT, found
        return BGPAnnounceReason.NO_ANNOUNCING_NODE, found

    def per_ip(self, node: str, setting: BgpSetting) -> list[Carried]:
        """What NODE carries of each IP."""
        return [self.carried(index, node, setting) for index in range(len(self.ips))]

    def carried(self, index: int, node: str, setting: BgpSetting) -> Carried:
        """(peers, advertisement, prefixes) for each advertisement under which NODE announces the IP at INDEX (to the
        peers whose session carries the IP's family)."""
        info_node = setting.nodes.get(node)
        if not usable(info_node):
            return []
        assert info_node is not None
        family = family_of(self.ips[index])
        peers = [p.name for p in node_peers(setting.config, info_node)
                 if session_carries(p.disable_mp, p.address, family)]
        out = []
        for adv in self.advertisements[index]:
            to = frozenset(p for p in peers if adv.announces_to(p))
            if not to:
                continue
            decision = decide(node, [self.ips[index]], self.local, self.endpoints, adv.selects_node(info_node.labels),
                              adv.aggregation_length, adv.aggregation_length_v6)
            if decision.prefixes:
                out.append((to, adv, decision.prefixes))
        return out
