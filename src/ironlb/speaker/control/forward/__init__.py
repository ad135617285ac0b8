"""NodePort forwarding (pool `forwarding: NodePort`): plan (pure) -> nftables text (pure) -> nft."""

from __future__ import annotations

from dataclasses import dataclass

from ironlb.speaker.control.forward.plan import KUBE_PROXY_HEALTHZ_PORT


@dataclass(frozen=True)
class ForwardingSettings:
    """Whether this speaker may program nftables, where nft is, and where kube-proxy answers health checks."""

    enabled: bool = True
    nft: str = "nft"
    kube_proxy_healthz_port: int = KUBE_PROXY_HEALTHZ_PORT
    health_interval: float = 1.0
