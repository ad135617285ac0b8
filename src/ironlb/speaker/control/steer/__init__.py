"""Steering around dead nodes: plan (pure) -> nftables text (pure) -> nft, after a confirmed death."""

from __future__ import annotations

from dataclasses import dataclass

from ironlb.speaker.control.forward.plan import KUBE_PROXY_HEALTHZ_PORT


@dataclass(frozen=True)
class SteeringSettings:
    """Whether this speaker steers (it needs NET_ADMIN), where nft is, and how a death is confirmed."""

    enabled: bool = True
    nft: str = "nft"
    conntrack: str = "conntrack"  # forgets the flows to a dead node's pods once steering is in place
    probe_port: int = KUBE_PROXY_HEALTHZ_PORT  # the port a dead node's host no longer answers on
    probe_timeout: float = 0.25
    # After Kubernetes stops listing a dead node's endpoints as ready, kube-proxy needs a sync to stop using
    # them: a Service stays steered this long after its last endpoint on a dead node.
    handover_s: float = 10.0
