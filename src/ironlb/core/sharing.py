"""IP sharing rules (as MetalLB): same non-empty key, no port collision, compatible traffic policy,
and (unlike MetalLB) the same namespace unless the IP's pool allows sharing across namespaces: a
sharing key is a plain string anyone can copy, so it alone must not let one tenant join another's IP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum


class Sharing(Enum):
    """Whether two Services may hold the same IP, and why not."""

    COMPATIBLE = "compatible"
    NO_SHARING_KEY = "no-sharing-key"
    DIFFERENT_SHARING_KEY = "different-sharing-key"
    PORT_COLLISION = "port-collision"
    TRAFFIC_POLICY_MISMATCH = "traffic-policy-mismatch"
    SELECTOR_MISMATCH = "local-policy-selector-mismatch"
    DIFFERENT_NAMESPACE = "different-namespace"


@dataclass(frozen=True, slots=True)  # one per assigned Service: no __dict__ each
class SharingFacts:
    """What sharing depends on for one Service."""

    key: str
    sharing_key: str | None
    ports: tuple[tuple[str, int], ...]
    traffic_policy: str = "Cluster"
    selector: Mapping[str, str] = field(default_factory=dict)
    namespace: str = "default"


def can_share(a: SharingFacts, b: SharingFacts, across_namespaces: bool = False) -> Sharing:
    """May A and B hold the same IP (ACROSS_NAMESPACES: the IP's pool lets namespaces share)?"""
    if not a.sharing_key or not b.sharing_key:
        return Sharing.NO_SHARING_KEY
    if a.sharing_key != b.sharing_key:
        return Sharing.DIFFERENT_SHARING_KEY
    if a.namespace != b.namespace and not across_namespaces:
        return Sharing.DIFFERENT_NAMESPACE
    if set(a.ports) & set(b.ports):
        return Sharing.PORT_COLLISION
    if a.traffic_policy != b.traffic_policy:
        return Sharing.TRAFFIC_POLICY_MISMATCH
    if a.traffic_policy == "Local" and dict(a.selector) != dict(b.selector):
        return Sharing.SELECTOR_MISMATCH
    return Sharing.COMPATIBLE
