"""`ironlb doctor`'s BGP links (pure): advertisement covers the pool -> nodes selected -> session Established
(BFD up) -> prefix sent to the peer, each with the reason enum it stands on.

They are walked for a Service whose pool a BGPAdvertisement covers (or when the cluster has BGP objects and
nothing covers it), from the CRs as the speakers parse them (ironlb.api.bgp_parse, speaker.state.bgpview: the
same rule decides which node sends which IP to which peer) and from each node's BGPNodeStatus. Doctor reads no
Secret: a peer's password is taken as given, and a missing one is the BGPPeer's Invalid condition (the operator's).
"""

from __future__ import annotations

import base64
from typing import Any

from ironlb.api.bgp_parse import parse_config
from ironlb.api.bgp_status import BFDState, NodeBGPStatus, SessionState, SessionStatus
from ironlb.api.conditions import bgp_draining_in, find
from ironlb.api.constants import BGP_PASSWORD_SECRET_KEY, BGP_PASSWORD_SECRET_TYPE
from ironlb.api.reasons import BGPAnnounceReason, BGPDrainReason, ConditionType, parse
from ironlb.cli.doctor.context import Context
from ironlb.cli.doctor.model import BgpLink, BgpLinkId, Mark
from ironlb.speaker.state.bgpview import BgpSetting, carriers, covering

BGP_FACTS = ("bgpPeers", "bfdProfiles", "bgpAdvertisements")
ANY_PASSWORD = {"type": BGP_PASSWORD_SECRET_TYPE, "data": {BGP_PASSWORD_SECRET_KEY: base64.b64encode(b"-").decode()}}


def in_use(ctx: Context) -> bool:
    """Whether the Service's BGP links are worth walking: the cluster has BGP objects."""
    return any(ctx.facts.get(kind) for kind in BGP_FACTS)


def setting(ctx: Context) -> BgpSetting:
    """The BGP objects as the speakers parse them (every named Secret taken as holding a password)."""
    peers = ctx.facts.get("bgpPeers") or []
    names = {str(((p.get("spec") or {}).get("passwordSecret") or {}).get("name", "")) for p in peers}
    config = parse_config(peers, ctx.facts.get("bfdProfiles") or [], ctx.facts.get("bgpAdvertisements") or [],
                          secrets={name: ANY_PASSWORD for name in names if name}, pools=ctx.state.pools)
    return BgpSetting(config, ctx.snapshot.nodes, ctx.snapshot.pool_labels)


def _link(id_: BgpLinkId, ok: bool, reason: Any, summary: str, fix: str = "",
          details: tuple[str, ...] = ()) -> BgpLink:
    return BgpLink(id_, Mark.OK if ok else Mark.FAILED, reason, summary, "" if ok else fix, details)


def bgp_links(ctx: Context) -> tuple[BgpLink, ...]:
    """The BGP links in order, stopping at the first broken one (the rest not reached); () without BGP objects."""
    if not in_use(ctx) or ctx.info is None:
        return ()
    walk = _Walk(ctx, setting(ctx))
    links: list[BgpLink] = []
    for check in (walk.advertisement, walk.nodes, walk.sessions, walk.sent):
        links.append(check())
        if links[-1].mark is Mark.FAILED:
            break
    reached = {link.id for link in links}
    return (*links, *(BgpLink(i, Mark.NOT_REACHED, None, "not reached") for i in BgpLinkId if i not in reached))


class _Walk:
    """The BGP links of one Service, sharing what the earlier ones found."""

    def __init__(self, ctx: Context, bgp: BgpSetting) -> None:
        assert ctx.info is not None
        self.ctx, self.bgp, self.info = ctx, bgp, ctx.info
        self.reason, self.found = carriers(self.info, self.info.labels, bgp)
        self.statuses = {s.node: s for s in (NodeBGPStatus.from_object(o) for o in ctx.facts.get("bgpNodeStatuses")
                                              or [])}
        self.up: list[tuple[str, str, str]] = []  # (IP, node, peer) with the session Established
        self.cond = find((ctx.service or {}).get("status"), ConditionType.SERVICE_BGP_ANNOUNCED) or {}
        message = self.cond.get("message")
        # The carriers the speakers' condition marks as draining (cordoned, shut down, SIGTERM), and why.
        self.draining: dict[str, BGPDrainReason] = bgp_draining_in(message) if isinstance(message, str) else {}

    def advertisement(self) -> BgpLink:
        """B1: a BGPAdvertisement covers the Service's pool (and selects the Service)."""
        names = [a.name for a in covering(self.bgp, self.info.pool, self.info.labels)]
        if names:
            return _link(BgpLinkId.ADVERTISEMENT, True, BGPAnnounceReason.ADVERTISED,
                         f"BGPAdvertisement {', '.join(names)} covers pool {self.info.pool}")
        problems = [p for p in self.bgp.config.problems if p.kind == "BGPAdvertisement"]
        return _link(BgpLinkId.ADVERTISEMENT, False, BGPAnnounceReason.NO_BGP_ADVERTISEMENT,
                     f"no BGPAdvertisement covers pool {self.info.pool} (or selects this Service)",
                     "add the pool to a BGPAdvertisement's ipAddressPools (or its ipAddressPoolSelectors), or widen "
                     "its serviceSelectors", tuple(f"BGPAdvertisement {p.name}: {p.reason.value}: {p.message}"
                                                   for p in problems))

    def nodes(self) -> BgpLink:
        """B2: nodes selected by both a BGPAdvertisement and a BGPPeer, which may announce it."""
        if self.found:
            nodes = sorted({n for by_node in self.found.values() for n in by_node})
            return _link(BgpLinkId.NODES, True, BGPAnnounceReason.ADVERTISED,
                         f"{len(nodes)} node(s) announce it: {', '.join(self._named(n) for n in nodes)}")
        local = self.info.traffic_policy == "Local"
        return _link(BgpLinkId.NODES, False, self.reason,
                     "no node announces it: none is selected by both a BGPAdvertisement and a BGPPeer"
                     + (", or none has a ready endpoint (externalTrafficPolicy: Local)" if local else ""),
                     "widen the nodeSelectors of the BGPAdvertisement or the BGPPeer (kubectl get bgppeers "
                     "-o yaml)" + (", or run a ready pod on a selected node" if local else ""))

    def sessions(self) -> BgpLink:
        """B3: of the nodes that announce each IP, at least one has its session to the peer Established (BFD up)."""
        details, down = [], []
        for ip, by_node in sorted(self.found.items()):
            for node, peers in sorted(by_node.items()):
                for peer in peers:
                    session = self._session(node, peer)
                    if _up(session):
                        self.up.append((ip, node, peer))
                    else:
                        down.append(ip)
                    details.append(f"{node} -> {peer}: {_words(session)}")
        missing = sorted({ip for ip in self.found} - {ip for ip, _, _ in self.up})
        if not missing:
            return _link(BgpLinkId.SESSIONS, True, BGPAnnounceReason.ADVERTISED,
                         f"{len(self.up)} session(s) Established", details=tuple(details))
        return _link(BgpLinkId.SESSIONS, False, BGPAnnounceReason.NO_ESTABLISHED_SESSION,
                     f"no session Established to carry {', '.join(missing)}",
                     "see each session's lastError (kubectl get bgpnodestatus NODE -o yaml): a wrong ASN or password, "
                     "the router not listening, BFD down; and the router's side", tuple(details))

    def sent(self) -> BgpLink:
        """B4: the nodes with a session up sent the prefix (BGPNodeStatus counts it; the Service's condition)."""
        cond = self.cond
        reason = parse(BGPAnnounceReason, cond.get("reason"))
        unsent = sorted({f"{node} -> {peer}" for ip, node, peer in self.up if not _counted(self._session(node, peer),
                                                                                           ip)})
        # Draining: still sent, less preferred, until the nodes withdraw
        carried = reason in (BGPAnnounceReason.ADVERTISED, BGPAnnounceReason.DRAINING)
        if carried and len(unsent) < len(self.up):
            return _link(BgpLinkId.SENT, True, reason, str(cond.get("message", "")),
                         details=tuple(f"{pair}: no prefix of that family counted yet" for pair in unsent))
        if reason is None:
            return _link(BgpLinkId.SENT, False, BGPAnnounceReason.NO_ESTABLISHED_SESSION,
                         "no speaker has said where it sends the IP (no ironlb.io/BGPAnnounced condition)",
                         "are the speakers running in BGP mode (--frr-socket-dir, the chart's speaker.bgp.enabled)?")
        return _link(BgpLinkId.SENT, False, reason, str(cond.get("message", "")) or "no prefix sent",
                     "the speaker's logs, and FRR's (kubectl logs POD -c frr)", tuple(unsent))

    def _named(self, node: str) -> str:
        """NODE, and why it drains when the Service's condition says it does."""
        reason = self.draining.get(node)
        return f"{node} (draining: {reason.value})" if reason is not None else node

    def _session(self, node: str, peer: str) -> SessionStatus | None:
        status = self.statuses.get(node)
        return status.session(peer) if status is not None else None


def _up(session: SessionStatus | None) -> bool:
    return session is not None and session.state is SessionState.ESTABLISHED and session.bfd in (BFDState.UP,
                                                                                                  BFDState.OFF)


def _counted(session: SessionStatus | None, ip: str) -> bool:
    if session is None:
        return False
    return (session.prefixes_sent_ipv6 if ":" in ip else session.prefixes_sent_ipv4) > 0


def _words(session: SessionStatus | None) -> str:
    if session is None:
        return "no session in its BGPNodeStatus"
    error = f", last error {session.last_error.reason.value}" if session.last_error else ""
    return f"{session.state.value}, BFD {session.bfd.value}{error}"
