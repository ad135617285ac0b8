"""Which prefixes this node announces for one Service, and why (a reason, never a message)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

# VIPs whose prefixes are remembered: a pass asks for each VIP's prefix once per node that may carry it, one
# Service after another, so the repeats hit even when there are more VIPs than this.
PREFIX_CACHE = 4096


class AnnounceReason(Enum):
    """Why this node announces a Service's prefixes or not."""

    NODE_NOT_SELECTED = "NodeNotSelected"
    LOCAL_READY_ENDPOINT = "LocalReadyEndpoint"
    LOCAL_NO_READY_ENDPOINT = "LocalNoReadyEndpoint"
    CLUSTER_SELECTED = "ClusterSelected"
    CLUSTER_NO_ENDPOINTS = "ClusterNoEndpoints"


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of the Service as EndpointSlices report it."""

    node: str | None
    ready: bool
    serving: bool = True
    terminating: bool = False


@dataclass(frozen=True)
class Decision:
    """Whether this node announces, why, and the prefixes it announces (empty when it does not)."""

    announce: bool
    reason: AnnounceReason
    prefixes: tuple[str, ...] = ()


@functools.lru_cache(maxsize=PREFIX_CACHE)
def prefix_for(vip: str, aggregation_v4: int = 32, aggregation_v6: int = 128) -> str:
    """The prefix announced for VIP: the VIP itself, or its covering prefix of the aggregation length."""
    addr = ipaddress.ip_address(vip)
    length = aggregation_v6 if addr.version == 6 else aggregation_v4
    if length == addr.max_prefixlen:  # the network of the whole length is the address itself: not parsed again
        return f"{addr}/{length}"
    return str(ipaddress.ip_network(f"{vip}/{length}", strict=False))


def decide(node: str, vips: Iterable[str], local_policy: bool, endpoints: Iterable[Endpoint],
           node_selected: bool, aggregation_v4: int = 32, aggregation_v6: int = 128) -> Decision:
    """Whether NODE announces the Service's VIPS.

    Local: only with a ready, not terminating endpoint on NODE. Cluster: when an advertisement selects NODE
    and the Service has an endpoint that can answer somewhere; with none, no node announces, so the routers
    stop sending traffic that every node would drop (MetalLB announces anyway).
    """
    eps = list(endpoints)
    if not node_selected:
        return Decision(False, AnnounceReason.NODE_NOT_SELECTED)
    if local_policy:
        if not any(e.node == node and e.ready and not e.terminating for e in eps):
            return Decision(False, AnnounceReason.LOCAL_NO_READY_ENDPOINT)
        reason = AnnounceReason.LOCAL_READY_ENDPOINT
    else:
        # kube-proxy falls back to serving, terminating endpoints when none is ready: those still answer.
        if not any(e.ready or (e.serving and e.terminating) for e in eps):
            return Decision(False, AnnounceReason.CLUSTER_NO_ENDPOINTS)
        reason = AnnounceReason.CLUSTER_SELECTED
    prefixes = sorted({prefix_for(v, aggregation_v4, aggregation_v6) for v in vips})
    return Decision(True, reason, tuple(prefixes))
