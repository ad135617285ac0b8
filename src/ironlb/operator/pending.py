"""Services whose request is not met, indexed by what could meet it.

A release, an ended hold or a pool change retries only the pending Services it can help: those
that asked for one of the freed IPs, those out of room in the freed IP's pool, those naming the
changed pool or one of its addresses. A Service that can never be served (a pool it may not use,
junk in its request) is not retried by other tenants' churn: only its own edits, a namespace
relabel or a pool change that concerns it bring it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ironlb.core.addresses import ip_to_int
from ironlb.core.allocator import AllocationReason, ServiceRequest, refusal
from ironlb.core.pools import Pool

# Failures a freed IP can end: the IP itself was wanted, or its pool was out of room.
_WANTS_IP = frozenset({AllocationReason.REQUESTED_IP_IN_USE, AllocationReason.SHARING_INCOMPATIBLE,
                       AllocationReason.REQUESTED_IP_HELD})
_WANTS_ROOM = frozenset({AllocationReason.POOL_EXHAUSTED})


class Pending:
    """Pending Service keys with their request and the reason they wait."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[ServiceRequest | None, AllocationReason]] = {}
        self._by_ip: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, key: object) -> bool:
        return key in self._waiting

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._waiting))

    def reason(self, key: str) -> AllocationReason | None:
        """Why KEY waits (None: it does not)."""
        found = self._waiting.get(key)
        return found[1] if found else None

    def add(self, key: str, request: ServiceRequest | None, reason: AllocationReason) -> None:
        """KEY waits, asking REQUEST, refused for REASON."""
        self.discard(key)
        self._waiting[key] = (request, reason)
        for ip in request.requested_ips if request else ():
            self._by_ip.setdefault(ip, set()).add(key)

    def discard(self, key: str) -> None:
        """KEY no longer waits (served, deleted, not ours)."""
        found = self._waiting.pop(key, None)
        for ip in found[0].requested_ips if found and found[0] else ():
            keys = self._by_ip.get(ip, set())
            keys.discard(key)
            if not keys:
                self._by_ip.pop(ip, None)

    def helped_by_release(self, ips: Iterable[str], pool: Pool | None) -> set[str]:
        """The pending Services that IPS, freed in POOL, could serve now."""
        out: set[str] = set()
        for ip in ips:
            out |= {k for k in self._by_ip.get(ip, ()) if self._waiting[k][1] in _WANTS_IP}
        if pool is None:
            return out
        for key, (req, reason) in self._waiting.items():
            if reason in _WANTS_ROOM and req is not None and not req.requested_ips and _may_use(pool, req):
                out.add(key)
        return out

    def helped_by_pool(self, pool: Pool) -> set[str]:
        """The pending Services a new or changed POOL could serve: naming it, wanting one of its
        addresses, or asking for any address it may give them."""
        out: set[str] = set()
        for key, (req, reason) in self._waiting.items():
            if req is None or reason is AllocationReason.INVALID_REQUEST:
                continue
            if req.requested_pool == pool.name or (req.requested_ips and _covers(pool, req.requested_ips)) \
                    or (not req.requested_ips and not req.requested_pool and _may_use(pool, req)):
                out.add(key)
        return out


def _may_use(pool: Pool, req: ServiceRequest) -> bool:
    """True when REQ may get an address from POOL without naming an IP."""
    named = req.requested_pool == pool.name
    return (named or (req.requested_pool is None and pool.auto_assign)) and refusal(pool, req) is None


def _covers(pool: Pool, ips: Iterable[str]) -> bool:
    try:
        return any(pool.contains(*ip_to_int(ip)) for ip in ips)
    except ValueError:
        return False
