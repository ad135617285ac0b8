"""Desired announcements, computed purely from a Snapshot: which IPs this node answers for, and why.

Every speaker computes the same answer from the same snapshot (the election is a hash), so no
node writes to the API to agree; the permutation tests check that event order does not matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from ironlb.core.election import elect
from ironlb.core.selectors import advertisement_applies, selector_matches
from ironlb.speaker.state.snapshot import (
    ALL_INTERFACES,
    Advertisement,
    AnnounceReason,
    NodeInfo,
    ServiceInfo,
    Snapshot,
)


class NodeEligibility(Enum):
    """Whether a node may announce a Service's IP, and why not."""

    ELIGIBLE = "eligible"
    NOT_SELECTED = "not-selected-by-advertisement"
    DEAD = "not-alive"
    NETWORK_UNAVAILABLE = "network-unavailable"
    EXCLUDED_BY_LABEL = "excluded-by-label"
    NO_LOCAL_ENDPOINT = "no-local-ready-endpoint"


@dataclass(frozen=True, slots=True)  # one per Service IP: no __dict__ each
class Decision:
    """The outcome for one Service IP."""

    service: str
    ip: str
    reason: AnnounceReason
    node: str | None = None
    interfaces: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Desired:
    """What one node should announce (ip -> interfaces) and the decision for every Service IP."""

    announcements: Mapping[str, frozenset[str]]
    decisions: tuple[Decision, ...]


def advertisements_for(pool: str | None, snapshot: Snapshot, svc: ServiceInfo | None = None) -> list[Advertisement]:
    """The L2Advertisements that cover a pool (by name or by pool label selector) and, given SVC, apply to it
    (their serviceSelectors and its labels)."""
    ads = covering(pool, snapshot.advertisements, snapshot.pool_labels)
    return ads if svc is None else applying(ads, svc.labels)


def covering(pool: str | None, advertisements: Iterable[Advertisement],
             pool_labels: Mapping[str, Mapping[str, str]]) -> list[Advertisement]:
    """The ADVERTISEMENTS that cover POOL, in their order (whichever Service: see `applying`)."""
    if pool is None:
        return []
    labels = pool_labels.get(pool, {})
    out = []
    for ad in advertisements:
        by_name = pool in ad.pools
        by_selector = any(selector_matches(sel, labels) for sel in ad.pool_selectors)
        everything = not ad.pools and not ad.pool_selectors  # MetalLB: no pools named = all pools
        if by_name or by_selector or everything:
            out.append(ad)
    return out


def applying(ads: list[Advertisement], service_labels: Iterable[tuple[str, str]]) -> list[Advertisement]:
    """The ADS whose serviceSelectors take a Service with SERVICE_LABELS (MetalLB 0.16: they filter what the
    pools selected; an advertisement without any takes every Service)."""
    if not any(ad.service_selectors for ad in ads):
        return ads
    labels = dict(service_labels)
    return [ad for ad in ads if advertisement_applies(ad.service_selectors, labels)]


def unadvertised(pool_ads: list[Advertisement]) -> AnnounceReason:
    """Why a Service none of whose advertisements apply is not announced: none covers its pool (POOL_ADS
    empty), or some do but their serviceSelectors leave it out."""
    return AnnounceReason.NO_MATCHING_ADVERTISEMENT if pool_ads else AnnounceReason.NO_ADVERTISEMENT


def selects_node(ad: Advertisement, node: NodeInfo) -> bool:
    """Does AD's nodeSelectors pick NODE (none = every node)?"""
    return not ad.node_selectors or any(selector_matches(sel, node.labels) for sel in ad.node_selectors)


def eligibility(node: NodeInfo, ads: list[Advertisement], svc: ServiceInfo, alive: frozenset[str]) -> NodeEligibility:
    """May NODE announce SVC's IPs under ADS?"""
    if not any(selects_node(ad, node) for ad in ads):
        return NodeEligibility.NOT_SELECTED
    return node_state(node, svc, alive)


def node_state(node: NodeInfo, svc: ServiceInfo, alive: frozenset[str]) -> NodeEligibility:
    """May NODE take SVC's traffic at all (whatever advertisement)? Shared with NodePort forwarding."""
    if node.name not in alive:  # heartbeats first; the Node's Ready as a second signal
        return NodeEligibility.DEAD
    return api_state(node, svc)


def api_state(node: NodeInfo, svc: ServiceInfo) -> NodeEligibility:
    """NODE's eligibility for SVC from the API alone (everything but heartbeat liveness)."""
    if not node.ready:
        return NodeEligibility.DEAD
    if node.network_unavailable:
        return NodeEligibility.NETWORK_UNAVAILABLE
    if node.excluded:
        return NodeEligibility.EXCLUDED_BY_LABEL
    if svc.traffic_policy == "Local" and node.name not in svc.ready_nodes:
        return NodeEligibility.NO_LOCAL_ENDPOINT
    return NodeEligibility.ELIGIBLE


def interfaces_for(node: NodeInfo, ads: list[Advertisement]) -> frozenset[str]:
    """The interfaces NODE answers on under ADS ('*' = every default interface)."""
    chosen: set[str] = set()
    for ad in ads:
        if selects_node(ad, node):
            if not ad.interfaces:
                return ALL_INTERFACES
            chosen |= ad.interfaces
    return frozenset(chosen)


def decide(svc: ServiceInfo, snapshot: Snapshot) -> list[Decision]:
    """Decisions for every IP of one Service, each under the advertisements of its own pool."""
    eligible: dict[str, list[str]] = {}  # pool -> eligible nodes (a Service's IPs share one pool, as a rule)
    out = []
    for i, ip in enumerate(svc.ips):
        pool = svc.pool_of(i)
        if svc.withdrawing:
            out.append(Decision(svc.key, ip, AnnounceReason.WITHDRAWN))
            continue
        if pool is None:
            out.append(Decision(svc.key, ip, AnnounceReason.NOT_IN_POOL))
            continue
        pool_ads = advertisements_for(pool, snapshot)
        ads = applying(pool_ads, svc.labels)
        if not ads:
            out.append(Decision(svc.key, ip, unadvertised(pool_ads)))
            continue
        if not svc.ready_nodes:
            out.append(Decision(svc.key, ip, AnnounceReason.NO_READY_ENDPOINTS))
            continue
        if pool not in eligible:
            eligible[pool] = [n.name for n in snapshot.nodes.values()
                              if eligibility(n, ads, svc, snapshot.alive) is NodeEligibility.ELIGIBLE]
        # Local policy: the announcing node keeps its IP while eligible
        winner = elect(ip, eligible[pool], svc.incumbent(ip))
        if winner is None:
            out.append(Decision(svc.key, ip, AnnounceReason.NO_ELIGIBLE_NODE))
        else:
            out.append(Decision(svc.key, ip, AnnounceReason.ANNOUNCING, winner,
                                interfaces_for(snapshot.nodes[winner], ads)))
    return out


def compute(snapshot: Snapshot, me: str) -> Desired:
    """Desired announcements of node ME, and every decision (for status reporting)."""
    decisions: list[Decision] = []
    announcements: dict[str, frozenset[str]] = {}
    for key in sorted(snapshot.services):
        for decision in decide(snapshot.services[key], snapshot):
            if decision.node == me:
                announcements[decision.ip] = announcements.get(decision.ip, frozenset()) | decision.interfaces
            elif decision.reason is AnnounceReason.ANNOUNCING:
                decision = Decision(decision.service, decision.ip, AnnounceReason.ANNOUNCED_BY_PEER, decision.node,
                                    decision.interfaces)
            decisions.append(decision)
    return Desired(announcements=announcements, decisions=tuple(decisions))
