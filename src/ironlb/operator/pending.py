"""Services whose request is not met, indexed by what blocks them, so a change looks up only those it
can unblock instead of scanning every pending Service.

What blocks a Service, and the index that finds it:
- an IP it asked for is taken, held or shared incompatibly: by that IP;
- its pool (the one it names, or any auto-assign pool) is out of room: by the pool it names (None: any);
- the pool it names does not exist or may not serve it: by that pool's name;
- no pool serves it at all: in the unnamed set, which a new or changed pool checks one by one.

A release, an ended hold or a pool change retries only the pending Services it can help. A Service
that can never be served (junk in its request) is in no index: only its own edits, a namespace
relabel or a pool change that concerns it bring it back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

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
        self._by_ip: dict[str, set[str]] = {}  # requested IP -> keys asking for it
        self._room: dict[str | None, set[str]] = {}  # named pool (None: any auto-assign one) -> keys out of room
        self._by_pool: dict[str, set[str]] = {}  # named pool -> keys naming it
        self._unnamed: set[str] = set()  # keys naming neither pool nor IP: any pool may serve them

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

    def reasons(self) -> Counter[AllocationReason]:
        """How many Services wait, by reason."""
        return Counter(reason for _, reason in self._waiting.values())

    def add(self, key: str, request: ServiceRequest | None, reason: AllocationReason) -> None:
        """KEY waits, asking REQUEST, refused for REASON."""
        self.discard(key)
        self._waiting[key] = (request, reason)
        for index, slot in self._entries(request, reason):
            index.setdefault(slot, set()).add(key)
        if request is not None and reason is not AllocationReason.INVALID_REQUEST \
                and not request.requested_ips and not request.requested_pool:
            self._unnamed.add(key)

    def discard(self, key: str) -> None:
        """KEY no longer waits (served, deleted, not ours)."""
        found = self._waiting.pop(key, None)
        if found is None:
            return
        self._unnamed.discard(key)
        for index, slot in self._entries(*found):
            keys = index.get(slot, set())
            keys.discard(key)
            if not keys:
                index.pop(slot, None)

    def helped_by_release(self, ips: Iterable[str], pool: Pool | None) -> set[str]:
        """The pending Services that IPS, freed in POOL, could serve now."""
        out: set[str] = set()
        for ip in ips:
            out |= {k for k in self._by_ip.get(ip, ()) if self._waiting[k][1] in _WANTS_IP}
        if pool is None:
            return out
        for named in (pool.name, None):
            for key in self._room.get(named, ()):
                req = self._waiting[key][0]
                if req is not None and _may_use(pool, req):
                    out.add(key)
        return out

    def helped_by_pool(self, pool: Pool) -> set[str]:
        """The pending Services a new or changed POOL could serve: naming it, wanting one of its
        addresses, or asking for any address it may give them."""
        out = set(self._by_pool.get(pool.name, ()))
        for ip, keys in self._by_ip.items():
            if _covers(pool, (ip,)):
                out |= keys
        for key in self._unnamed:
            req = self._waiting[key][0]
            if req is not None and _may_use(pool, req):
                out.add(key)
        return out

    def _entries(self, request: ServiceRequest | None,
                 reason: AllocationReason) -> list[tuple[dict[Any, set[str]], str | None]]:
        """(index, slot in it) for each index a Service waiting with REQUEST for REASON is in."""
        if request is None or reason is AllocationReason.INVALID_REQUEST:
            return []
        out: list[tuple[dict[Any, set[str]], str | None]] = [(self._by_ip, ip) for ip in request.requested_ips]
        if request.requested_pool:
            out.append((self._by_pool, request.requested_pool))
        if reason in _WANTS_ROOM and not request.requested_ips:
            out.append((self._room, request.requested_pool))
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
