"""The allocator's state of each pool: its free addresses and counts by family, and which pools serve a
request. An address two pools cover is taken from, and released to, both pools' free sets at once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ironlb.core.addresses import IPV4, IPV6, is_buggy
from ironlb.core.intervals import FreeSet
from ironlb.core.pools import Pool, usable_intervals
from ironlb.core.requests import Allocation, AllocationReason, ServiceRequest, fail, refusal

IP = tuple[str, int]  # (family, integer)


@dataclass
class PoolState:
    """One pool's free addresses, size and assigned count, by family."""

    pool: Pool
    free: dict[str, FreeSet]
    size: dict[str, int]
    assigned: dict[str, int] = field(default_factory=lambda: {IPV4: 0, IPV6: 0})

    def usable(self, ip: IP) -> bool:
        """IP is in the pool and not one it avoids."""
        family, value = ip
        return self.pool.contains(family, value) and not (self.pool.avoid_buggy_ips and is_buggy(family, value))


def fresh_state(pool: Pool) -> PoolState:
    """POOL with every usable address free and none assigned."""
    free = {f: FreeSet(usable_intervals(pool, f)) for f in (IPV4, IPV6)}
    return PoolState(pool, free, {f: free[f].count for f in free})


def candidate_pools(pools: dict[str, PoolState], req: ServiceRequest) -> list[PoolState] | Allocation:
    """The pools REQ may get addresses from, best first, or the failure that says why there is none."""
    if req.requested_pool:
        state = pools.get(req.requested_pool)
        if state is None:
            return fail(AllocationReason.POOL_NOT_FOUND, f"pool {req.requested_pool!r} does not exist")
        why = refusal(state.pool, req)
        return [state] if why is None else fail(AllocationReason.POOL_NOT_ALLOWED, why)
    selected = [s for s in pools.values() if s.pool.auto_assign and s.pool.has_service_allocation
                and refusal(s.pool, req) is None]
    selected.sort(key=lambda s: (s.pool.priority is None, s.pool.priority or 0, s.pool.name))
    general = [s for s in pools.values() if s.pool.auto_assign and not s.pool.has_service_allocation]
    if not selected and not general:
        return fail(AllocationReason.NO_POOL_MATCHES, "no auto-assign pool serves this Service")
    return selected + general


def take_free(states: Iterable[PoolState], ip: IP) -> None:
    """IP is no longer free in any of STATES that covers it."""
    for state in states:
        if state.usable(ip):
            state.free[ip[0]].take(ip[1])


def release_free(states: Iterable[PoolState], ip: IP) -> None:
    """IP is free again in every one of STATES that covers it."""
    for state in states:
        if state.usable(ip):
            state.free[ip[0]].release(ip[1])
