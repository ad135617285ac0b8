"""The speaker's view of the cluster as plain, immutable data (no Kubernetes types)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
ALL_INTERFACES: frozenset[str] = frozenset({"*"})  # an advertisement naming no interface: every default one


# Here, with the plain data, not in desired.py: the fast plane reads it (claims) without loading the election.
class AnnounceReason(Enum):
    """Why a Service's IP is, or is not, announced by a node."""

    ANNOUNCING = "Announcing"
    ANNOUNCED_BY_PEER = "AnnouncedByPeer"
    NO_ADVERTISEMENT = "NoL2Advertisement"
    NO_ELIGIBLE_NODE = "NoEligibleNode"
    NO_READY_ENDPOINTS = "NoReadyEndpoints"


@dataclass(frozen=True, slots=True)  # 10,000 of them: no __dict__ each
class ServiceInfo:
    """A LoadBalancer Service with assigned IPs."""

    key: str
    ips: tuple[str, ...]
    pool: str | None
    traffic_policy: str = "Cluster"
    ready_nodes: frozenset[str] = frozenset()  # nodes with at least one ready endpoint
    ports: tuple[tuple[str, int, int], ...] = ()  # (protocol, port, nodePort)
    client_ip_affinity: bool = False  # spec.sessionAffinity: ClientIP
    health_check_node_port: int = 0  # kube-proxy answers here when the node has a local endpoint
    source_ranges: tuple[str | None, ...] = ()  # spec.loadBalancerSourceRanges (None: an entry not a string)


@dataclass(frozen=True)
class NodeInfo:
    """A Node's labels and the conditions that matter for announcing."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    network_unavailable: bool = False
    ready: bool = True
    addresses: tuple[str, ...] = ()  # InternalIPs


@dataclass(frozen=True)
class Advertisement:
    """An L2Advertisement: which pools, from which nodes, on which interfaces (empty = all)."""

    name: str
    pools: frozenset[str] = frozenset()
    pool_selectors: tuple[Mapping[str, Any], ...] = ()
    node_selectors: tuple[Mapping[str, Any], ...] = ()
    interfaces: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Snapshot:
    """Everything the desired-state function needs."""

    services: Mapping[str, ServiceInfo]
    nodes: Mapping[str, NodeInfo]
    alive: frozenset[str]
    advertisements: tuple[Advertisement, ...]
    pool_labels: Mapping[str, Mapping[str, str]]
    pool_forwarding: Mapping[str, str] = field(default_factory=dict)  # pool -> KubeProxy | NodePort
