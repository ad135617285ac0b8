"""What a Service asks of the allocator, and what it answers: requests, reasons, allocations."""

from __future__ import annotations

from dataclasses import dataclass, field

from ironlb.core.addresses import IPV4, IPV6
from ironlb.core.allocation_reason import OK_REASONS, AllocationReason
from ironlb.core.pools import Pool
from ironlb.core.sharing import SharingFacts


@dataclass(slots=True)  # one per Service the operator knows: no __dict__ each
class ServiceRequest:
    """What a Service asks of the allocator."""

    key: str
    namespace: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    namespace_labels: dict[str, str] = field(default_factory=dict)
    ip_families: list[str] = field(default_factory=lambda: [IPV4])
    ip_family_policy: str = "SingleStack"
    requested_ips: list[str] = field(default_factory=list)
    requested_pool: str | None = None
    sharing_key: str | None = None
    ports: tuple[tuple[str, int], ...] = ()
    traffic_policy: str = "Cluster"
    selector: dict[str, str] = field(default_factory=dict)

    def facts(self) -> SharingFacts:
        """The sharing-relevant facts of this request."""
        # The selector is the request's own, never changed once read: the facts share it rather than copy it.
        return SharingFacts(self.key, self.sharing_key, tuple(self.ports), self.traffic_policy, self.selector,
                            self.namespace)


@dataclass(frozen=True)
class Allocation:
    """Result of assign/restore: the IPs (lowest family first as requested), pool, reason, message."""

    ips: tuple[str, ...]
    pool: str | None
    reason: AllocationReason
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when the Service holds IPs as a result."""
        return self.reason in OK_REASONS


def fail(reason: AllocationReason, message: str) -> Allocation:
    """A failed Allocation: no IPs, no pool."""
    return Allocation((), None, reason, message)


def refusal(pool: Pool, req: ServiceRequest) -> str | None:
    """Why POOL's serviceAllocation does not serve REQ (naming the rule), or None if it does."""
    return pool.refusal(req.namespace, req.namespace_labels, req.key, req.labels)


def family_plan(req: ServiceRequest) -> tuple[list[str], list[str]]:
    """(required families, optional families) for a request."""
    families = [f for f in req.ip_families if f in (IPV4, IPV6)] or [IPV4]
    other = IPV6 if families[0] == IPV4 else IPV4
    if req.ip_family_policy == "RequireDualStack":
        return [families[0], other], []
    if req.ip_family_policy == "PreferDualStack":
        return [families[0]], [other]
    return [families[0]], []
