"""NodePort forwarding, decided purely from a Snapshot: for every VIP this node announces from a
`forwarding: NodePort` pool, which nodes' NodePorts take its traffic, and why the others do not.

Every speaker computes the same plan from the same snapshot and health results, and the hash
buckets are rendezvous-hashed, so a new announcer after a failover spreads new flows the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from ironlb.core.addresses import family_of
from ironlb.core.source_ranges import SourceRangeProblem, SourceRanges, parse_source_ranges
from ironlb.speaker.control.forward.buckets import buckets
from ironlb.speaker.state.desired import NodeEligibility, node_state
from ironlb.speaker.state.snapshot import NodeInfo, ServiceInfo, Snapshot

NODE_PORT = "NodePort"
BUCKETS = 64
KUBE_PROXY_HEALTHZ_PORT = 10256
FORWARDED_PROTOCOLS = ("TCP", "UDP")


class Backend(Enum):
    """Whether a node's NodePort takes a forwarded VIP's traffic, and why not (values as NodeEligibility's)."""

    HEALTHY = "healthy"
    DEAD = "not-alive"
    NETWORK_UNAVAILABLE = "network-unavailable"
    EXCLUDED_BY_LABEL = "excluded-by-label"
    NO_LOCAL_ENDPOINT = "no-local-ready-endpoint"
    NO_ADDRESS = "no-address-of-the-VIP's-family"
    FAILING_HEALTH_CHECK = "failing-health-check"


@dataclass(frozen=True)
class Probe:
    """One health check: HTTP GET http://address:port/path must answer 200."""

    node: str
    address: str
    port: int
    path: str


@dataclass(frozen=True)
class Forward:
    """VIP:port/protocol goes to node_port on the node address of each hash bucket."""

    service: str
    vip: str
    protocol: str
    port: int
    node_port: int
    client_ip_affinity: bool
    buckets: tuple[str, ...]
    sources: tuple[str, ...] | None = None  # client networks let in (None: all; empty: none)


@dataclass(frozen=True)
class ServicePlan:
    """One forwarded Service: its backends' states and what could not be forwarded."""

    service: str
    backends: Mapping[str, Backend]
    problems: tuple[str, ...] = ()
    vips: tuple[str, ...] = ()  # the Service's VIPs this node forwards
    disabled: bool = False  # the speaker runs without NodePort forwarding (no NET_ADMIN)
    # loadBalancerSourceRanges entries not used (shown, why; at most a few) and how many there were
    invalid_ranges: tuple[tuple[str, SourceRangeProblem], ...] = ()
    invalid_range_count: int = 0

    @property
    def healthy(self) -> list[str]:
        """Nodes taking traffic, sorted."""
        return sorted(n for n, state in self.backends.items() if state is Backend.HEALTHY)


@dataclass(frozen=True)
class ForwardingPlan:
    """Everything this node forwards, plus per-Service state for status reporting."""

    forwards: tuple[Forward, ...]
    local_addresses: tuple[str, ...]
    services: Mapping[str, ServicePlan]


def address_of(node: NodeInfo, family: str) -> str | None:
    """The node's first InternalIP of FAMILY."""
    return next((a for a in node.addresses if family_of(a) == family), None)


def forwarded(svc: ServiceInfo, snapshot: Snapshot) -> bool:
    """Is SVC's pool a NodePort-forwarding pool?"""
    return svc.pool is not None and snapshot.pool_forwarding.get(svc.pool) == NODE_PORT


def probe_for(svc: ServiceInfo, node: NodeInfo, family: str, kube_proxy_port: int) -> Probe | None:
    """The health check of NODE for SVC: kube-proxy's per-Service check for Local, its healthz otherwise."""
    address = address_of(node, family)
    if address is None:
        return None
    if svc.traffic_policy == "Local" and svc.health_check_node_port:
        return Probe(node.name, address, svc.health_check_node_port, "/")
    return Probe(node.name, address, kube_proxy_port, "/healthz")


def backend_state(svc: ServiceInfo, node: NodeInfo, snapshot: Snapshot, family: str,
                  failing: frozenset[Probe], kube_proxy_port: int) -> Backend:
    """May NODE's NodePort take SVC's traffic for a VIP of FAMILY?"""
    state = node_state(node, svc, snapshot.alive)
    if state is not NodeEligibility.ELIGIBLE:
        return Backend(state.value)
    probe = probe_for(svc, node, family, kube_proxy_port)
    if probe is None:
        return Backend.NO_ADDRESS
    return Backend.FAILING_HEALTH_CHECK if probe in failing else Backend.HEALTHY


def _mine(snapshot: Snapshot, announced: Iterable[str]) -> list[tuple[ServiceInfo, str]]:
    """(service, vip) pairs this node announces from NodePort pools, in a stable order."""
    owned = set(announced)
    return [(svc, ip) for key in sorted(snapshot.services) if forwarded(svc := snapshot.services[key], snapshot)
            for ip in svc.ips if ip in owned]


def probes(snapshot: Snapshot, announced: Iterable[str], kube_proxy_port: int = KUBE_PROXY_HEALTHZ_PORT) -> set[Probe]:
    """Every health check the forwarded VIPs of this node need."""
    out: set[Probe] = set()
    for svc, vip in _mine(snapshot, announced):
        out |= service_probes(svc, [vip], snapshot, kube_proxy_port)
    return out


def service_probes(svc: ServiceInfo, vips: Iterable[str], snapshot: Snapshot,
                   kube_proxy_port: int = KUBE_PROXY_HEALTHZ_PORT) -> set[Probe]:
    """The health checks one forwarded Service's VIPS need (one per node and address family)."""
    families = {family_of(vip) for vip in vips}
    return {probe for family in families for node in snapshot.nodes.values()
            if (probe := probe_for(svc, node, family, kube_proxy_port)) is not None}


def _range_problems(ranges: SourceRanges, vips: Iterable[str]) -> list[str]:
    return [f"{vip} admits no client: loadBalancerSourceRanges has no valid range of its family"
            for vip in vips if ranges.allowed(family_of(vip)) == ()]


def _port_problems(svc: ServiceInfo) -> list[str]:
    problems = []
    for protocol, port, node_port in svc.ports:
        if protocol not in FORWARDED_PROTOCOLS:
            problems.append(f"port {port}/{protocol} is not forwarded: only TCP and UDP are")
        elif not node_port:
            problems.append(f"port {port}/{protocol} has no nodePort (allocateLoadBalancerNodePorts: false)")
    return problems


def service_plan(svc: ServiceInfo, vips: Iterable[str], snapshot: Snapshot, failing: frozenset[Probe] = frozenset(),
                 kube_proxy_port: int = KUBE_PROXY_HEALTHZ_PORT) -> tuple[list[Forward], ServicePlan]:
    """The forwards of one forwarded Service for the VIPS of it this node announces (in SVC's IP order), and its
    plan for status reporting."""
    forwards: list[Forward] = []
    parsed = parse_source_ranges(svc.source_ranges)
    backends: dict[str, Backend] = {}
    shown: list[str] = []
    for vip in vips:
        family = family_of(vip)
        states = {n.name: backend_state(svc, n, snapshot, family, failing, kube_proxy_port)
                  for n in snapshot.nodes.values()}
        healthy = [address_of(snapshot.nodes[n], family) for n, s in states.items() if s is Backend.HEALTHY]
        table = buckets(vip, [a for a in healthy if a], BUCKETS)
        for protocol, port, node_port in svc.ports:
            if table and protocol in FORWARDED_PROTOCOLS and node_port:
                forwards.append(Forward(svc.key, vip, protocol, port, node_port, svc.client_ip_affinity, table,
                                        parsed.allowed(family)))
        # Dual-stack: healthy in any family counts.
        backends.update({n: s for n, s in states.items() if not shown or backends.get(n) is not Backend.HEALTHY})
        shown.append(vip)
    problems = tuple(_port_problems(svc) + _range_problems(parsed, shown))
    return forwards, ServicePlan(svc.key, backends, problems, tuple(shown), invalid_ranges=parsed.invalid,
                                 invalid_range_count=parsed.invalid_count)


def plan(snapshot: Snapshot, me: str, announced: Iterable[str], failing: frozenset[Probe] = frozenset(),
         kube_proxy_port: int = KUBE_PROXY_HEALTHZ_PORT) -> ForwardingPlan:
    """The forwarding of node ME for the IPs it announces."""
    forwards: list[Forward] = []
    services: dict[str, ServicePlan] = {}
    owned = set(announced)
    for key in sorted(snapshot.services):
        svc = snapshot.services[key]
        vips = [ip for ip in svc.ips if ip in owned] if forwarded(svc, snapshot) else []
        if vips:
            mine, services[key] = service_plan(svc, vips, snapshot, failing, kube_proxy_port)
            forwards.extend(mine)
    return ForwardingPlan(tuple(forwards), local_addresses(snapshot, me), services)


def local_addresses(snapshot: Snapshot, me: str) -> tuple[str, ...]:
    """Node ME's own addresses (its forwarded traffic is not sent back to itself)."""
    me_node = snapshot.nodes.get(me)
    return me_node.addresses if me_node else ()
