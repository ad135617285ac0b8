"""Steering, decided purely: for each VIP this node announces, whether its new connections must skip the
endpoints of dead nodes, and which live endpoints take them instead.

Kubernetes keeps a dead node's endpoints ready until the node lifecycle controller marks the node NotReady,
and until then kube-proxy on every node keeps choosing them. The announcing node is where an external
client's connections enter, and the mesh tells it within a heartbeat timeout that a node is dead; so for
those Services, and only while it lasts, it picks among the live endpoints itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ironlb.api.reasons import SteeringReason
from ironlb.core.addresses import family_of
from ironlb.core.source_ranges import parse_source_ranges
from ironlb.speaker.state.endpoints import SliceTargets
from ironlb.speaker.state.snapshot import ServiceInfo

STEERED_PROTOCOLS = ("TCP", "UDP")
ServicePorts = tuple[tuple[str, str, int], ...]  # (name, protocol, port)


@dataclass(frozen=True)
class Steer:
    """New connections to VIP:port/protocol go to one of `targets` (address, port)."""

    service: str
    vip: str
    protocol: str
    port: int
    targets: tuple[tuple[str, int], ...]
    client_ip_affinity: bool = False
    sources: tuple[str, ...] | None = None  # loadBalancerSourceRanges (None: all); others are left to kube-proxy


@dataclass(frozen=True)
class SteeringPlan:
    """Every steer of this node, each announced Service's reason, and the dead nodes a steered one skips."""

    steers: tuple[Steer, ...] = ()
    reasons: Mapping[str, SteeringReason] = field(default_factory=dict)
    skipped: Mapping[str, frozenset[str]] = field(default_factory=dict)
    dead_addresses: frozenset[str] = frozenset()  # the skipped endpoints' addresses: their flows are forgotten
    dead_of: Mapping[str, frozenset[str]] = field(default_factory=dict)  # the same, by steered Service


def reason(svc: ServiceInfo, targets: Iterable[SliceTargets], dead: frozenset[str], forwarded: bool,
           held: bool = False) -> SteeringReason:
    """Must SVC's new connections be steered around DEAD nodes, and if not, why not? HELD: it was steered a
    moment ago, and Kubernetes has only just stopped listing the dead endpoints (kube-proxy may not have yet)."""
    if forwarded:
        return SteeringReason.NODEPORT_FORWARDED
    if svc.traffic_policy == "Local":
        return SteeringReason.LOCAL_POLICY
    nodes = {node for t in targets for node in t.nodes}
    if not nodes & dead:
        return SteeringReason.STEERED if held and dead and nodes else SteeringReason.NOT_NEEDED
    if not nodes - dead:
        return SteeringReason.NO_LIVE_ENDPOINT
    return SteeringReason.STEERED


def live_targets(vip: str, name: str, protocol: str, targets: Iterable[SliceTargets],
                 dead: frozenset[str]) -> tuple[tuple[str, int], ...]:
    """The (address, port) of every ready endpoint of VIP's family on a live node serving port NAME."""
    family, out = family_of(vip), set()
    for t in targets:
        port = t.port(name, protocol)
        if port is None:
            continue
        out.update((address, port) for node, address in t.endpoints()
                   if node not in dead and family_of(address) == family)
    return tuple(sorted(out))


def plan(announced: Iterable[tuple[ServiceInfo, str]], ports_of: Callable[[str], ServicePorts],
         targets_of: Callable[[str], list[SliceTargets]], dead: frozenset[str],
         forwarded: Callable[[ServiceInfo], bool], held: frozenset[str] = frozenset()) -> SteeringPlan:
    """The steering of the (Service, VIP) pairs this node ANNOUNCED, with the DEAD nodes confirmed; the HELD
    Services stay steered while a node is dead, though none of their ready endpoints is on it any more."""
    steers: list[Steer] = []
    reasons: dict[str, SteeringReason] = {}
    skipped: dict[str, frozenset[str]] = {}
    dead_of: dict[str, frozenset[str]] = {}
    for svc, vip in announced:
        targets = targets_of(svc.key) if dead else []
        why = reasons[svc.key] = reason(svc, targets, dead, forwarded(svc), svc.key in held)
        if why is not SteeringReason.STEERED:
            continue
        skipped[svc.key] = frozenset(n for t in targets for n in t.nodes if n in dead)
        dead_of[svc.key] = frozenset(address for t in targets for node, address in t.endpoints() if node in dead)
        sources = parse_source_ranges(svc.source_ranges).allowed(family_of(vip))
        for name, protocol, port in ports_of(svc.key):
            chosen = live_targets(vip, name, protocol, targets, dead) if protocol in STEERED_PROTOCOLS else ()
            if chosen:  # a port no live endpoint serves is left to kube-proxy
                steers.append(Steer(svc.key, vip, protocol, port, chosen, svc.client_ip_affinity, sources))
    return SteeringPlan(tuple(steers), reasons, skipped, frozenset().union(*dead_of.values()), dead_of)
