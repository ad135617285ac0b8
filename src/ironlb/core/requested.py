"""A Service's requested IPs, parsed and checked against the Service's IP families before any pool is asked."""

from __future__ import annotations

from ironlb.core.addresses import int_to_ip, ip_to_int
from ironlb.core.pool_state import IP
from ironlb.core.requests import Allocation, AllocationReason, ServiceRequest, fail, family_plan


def requested_ips(req: ServiceRequest) -> list[IP] | Allocation:
    """REQ's requested IPs, or why they cannot be granted as asked: not addresses, two of one family,
    of a family the Service does not have, or without one its family policy requires."""
    try:
        wanted = [ip_to_int(ip) for ip in req.requested_ips]
    except ValueError:
        return fail(AllocationReason.INVALID_REQUEST,
                     f"requested {', '.join(req.requested_ips)} is not an IP address")
    if len({f for f, _ in wanted}) != len(wanted):
        return fail(AllocationReason.INVALID_REQUEST,
                     f"requested {', '.join(req.requested_ips)} names two addresses of the same family")
    required, optional = family_plan(req)
    allowed = set(required + optional)
    bad = [int_to_ip(*ip) for ip in wanted if ip[0] not in allowed]
    if bad:
        return fail(AllocationReason.FAMILY_UNAVAILABLE,
                     f"requested {', '.join(bad)} is not of the Service's IP families "
                     f"({', '.join(sorted(allowed))})")
    missing = [f for f in required if f not in {family for family, _ in wanted}]
    if missing:
        return fail(AllocationReason.FAMILY_UNAVAILABLE,
                     f"{req.ip_family_policy} needs a requested {' and '.join(missing)} address too, "
                     f"not only {', '.join(req.requested_ips)}")
    return wanted
