"""The speaker's view of the cluster as plain, immutable data (no Kubernetes types)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ironlb.api.reasons import AnnounceReason

__all__ = ["ALL_INTERFACES", "EXCLUDE_LABEL", "Advertisement", "AnnounceReason", "NodeInfo", "ServiceInfo",
           "Snapshot"]
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
ALL_INTERFACES: frozenset[str] = frozenset({"*"})  # an advertisement naming no interface: every default one



@dataclass(frozen=True, slots=True)  # 10,000 of them: no __dict__ each
class ServiceInfo:
    """A LoadBalancer Service with assigned IPs."""

    key: str
    ips: tuple[str, ...]
    # The valid pool whose ranges hold its IPs (cluster.py decides it; an annotation only breaks a tie).
    # None: its IPs are in no valid pool, and are never announced.
    pool: str | None
    traffic_policy: str = "Cluster"
    ready_nodes: frozenset[str] = frozenset()  # nodes with at least one ready endpoint
    ports: tuple[tuple[str, int, int], ...] = ()  # (protocol, port, nodePort)
    client_ip_affinity: bool = False  # spec.sessionAffinity: ClientIP
    health_check_node_port: int = 0  # kube-proxy answers here when the node has a local endpoint
    source_ranges: tuple[str | None, ...] = ()  # spec.loadBalancerSourceRanges (None: an entry not a string)
    # Per IP (parallel to ips), only when its IPs lie in different pools (or some in none); () = all in `pool`.
    ip_pools: tuple[str | None, ...] = ()
    # Local policy: (IP, the node its Announced condition says announces it). That node keeps the IP while it
    # stays eligible: a node whose pod becomes ready later does not take it (each move cuts connections).
    incumbents: tuple[tuple[str, str], ...] = ()
    # Its metadata.labels, sorted: which L2Advertisements apply to it (their serviceSelectors).
    labels: tuple[tuple[str, str], ...] = ()
    # Being deleted, or no longer ours, while it keeps the cleanup finalizer: its IPs are withdrawn everywhere.
    withdrawing: bool = False

    def incumbent(self, ip: str) -> str | None:
        """The node that announces IP now, by the Service's own condition (Local policy only; None: none)."""
        return next((node for at, node in self.incumbents if at == ip), None)

    def pool_of(self, index: int) -> str | None:
        """The pool of the IP at INDEX (None: in no valid pool)."""
        return self.ip_pools[index] if self.ip_pools else self.pool

    def pools(self) -> frozenset[str | None]:
        """Every pool its IPs are in (None among them when some IP is in none)."""
        return frozenset(self.ip_pools) if self.ip_pools else frozenset({self.pool})


@dataclass(frozen=True)
class NodeInfo:
    """A Node's labels and the conditions that matter for announcing."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    network_unavailable: bool = False
    ready: bool = True
    addresses: tuple[str, ...] = ()  # InternalIPs
    # The speakers run with --ignore-exclude-lb: the exclude-from-external-load-balancers label is not read
    # (single-node, kind and Talos clusters set it on their only node).
    exclusion_ignored: bool = False

    @property
    def excluded(self) -> bool:
        """Does the exclude-from-external-load-balancers label keep this node from announcing?"""
        return EXCLUDE_LABEL in self.labels and not self.exclusion_ignored


@dataclass(frozen=True)
class Advertisement:
    """An L2Advertisement: which pools, from which nodes, on which interfaces (empty = all)."""

    name: str
    pools: frozenset[str] = frozenset()
    pool_selectors: tuple[Mapping[str, Any], ...] = ()
    node_selectors: tuple[Mapping[str, Any], ...] = ()
    interfaces: frozenset[str] = frozenset()
    service_selectors: tuple[Mapping[str, Any], ...] = ()  # none: every Service of its pools


@dataclass(frozen=True)
class Snapshot:
    """Everything the desired-state function needs."""

    services: Mapping[str, ServiceInfo]
    nodes: Mapping[str, NodeInfo]
    alive: frozenset[str]
    advertisements: tuple[Advertisement, ...]
    pool_labels: Mapping[str, Mapping[str, str]]
    pool_forwarding: Mapping[str, str] = field(default_factory=dict)  # pool -> KubeProxy | NodePort
