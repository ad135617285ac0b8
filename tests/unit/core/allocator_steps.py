"""The allocator scenario language: steps run in order against one Allocator, each checked as it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ironlb.core.addresses import int_to_ip, parse_ranges
from ironlb.core.allocator import AllocationReason, Allocator, ServiceRequest
from ironlb.core.pools import Pool

V4, V6 = "IPv4", "IPv6"
OK = (AllocationReason.ASSIGNED, AllocationReason.UNCHANGED, AllocationReason.RESTORED)


def pool(name: str, *addresses: str, **kw: Any) -> Pool:
    """A core Pool from address specs."""
    return Pool(name=name, ranges=tuple(parse_ranges(addresses)), **kw)


@dataclass
class Step:
    """One action against the allocator and what must come out of it."""

    op: str
    req: ServiceRequest | None = None
    key: str | None = None
    pools: list[Pool] | None = None
    restore_ips: list[str] = field(default_factory=list)
    hint: str | None = None
    ips: tuple[str, ...] | None = None
    reason: AllocationReason | None = None
    pool: str | None = None
    uncovered: list[str] | None = None
    holds: dict[str, tuple[tuple[str, ...], str] | None] | None = None
    stats: tuple[str, str, tuple[int, int, int]] | None = None
    time: float = 0.0


def assign(key: str, ips: tuple[str, ...] | None = None, reason: AllocationReason | None = None,
           pool: str | None = None, **req: Any) -> Step:
    """Assign; expect IPs (and ASSIGNED unless another reason is given), optionally the pool."""
    if ips is not None and reason is None:
        reason = AllocationReason.ASSIGNED
    return Step("assign", req=ServiceRequest(key=key, **req), ips=ips, reason=reason, pool=pool)


def release(key: str, ips: tuple[str, ...] = ()) -> Step:
    """Release a Service; expect exactly these IPs back."""
    return Step("release", key=key, ips=ips)


def set_pools(pools: list[Pool], uncovered: list[str]) -> Step:
    """Replace the pools; expect exactly these Services to lose their IPs."""
    return Step("pools", pools=pools, uncovered=uncovered)


def restore(key: str, ips: list[str], hint: str | None = None, reason: AllocationReason = AllocationReason.RESTORED,
            pool: str | None = None, **req: Any) -> Step:
    """Re-register an existing assignment."""
    return Step("restore", req=ServiceRequest(key=key, **req), restore_ips=ips, hint=hint, reason=reason,
                pool=pool)


def holds(**expected: tuple[tuple[str, ...], str] | None) -> Step:
    """Check what Services hold (None: nothing)."""
    return Step("holds", holds=expected)


def stats(pool_name: str, family: str, size: int, assigned: int, available: int) -> Step:
    """Check a pool's (size, assigned, available) for a family."""
    return Step("stats", stats=(pool_name, family, (size, assigned, available)))


def at(time: float, ended: tuple[str, ...] = ()) -> Step:
    """Move the allocator's clock to TIME; expect exactly the holds on ENDED to end."""
    return Step("at", time=time, ips=ended)


class FakeClock:
    """A clock the steps move."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


TCP80, TCP443, UDP53 = (("TCP", 80),), (("TCP", 443),), (("UDP", 53),)
REQUIRE46 = {"ip_families": [V4, V6], "ip_family_policy": "RequireDualStack"}
REQUIRE64 = {"ip_families": [V6, V4], "ip_family_policy": "RequireDualStack"}
TEAM = {"namespace": "team", "namespace_labels": {"env": "prod"}, "labels": {"tier": "edge"}}


def run_step(alloc: Allocator, step: Step, where: str) -> None:
    """Run one step and check its outcome and that nothing else moved."""
    if step.op == "pools":
        assert step.pools is not None and step.uncovered is not None
        before = alloc.assignments()
        uncovered = alloc.set_pools(step.pools)
        assert sorted(uncovered) == sorted(step.uncovered) and len(set(uncovered)) == len(uncovered), where
        for key in uncovered:
            assert alloc.assignment(key) is None, f"{where}: {key} still holds an IP"
        for key, held in before.items():
            if key not in uncovered:
                assert alloc.assignment(key) == held, f"{where}: {key} changed"
    elif step.op == "release":
        assert step.key is not None
        assert alloc.release(step.key) == list(step.ips or ()), where
        assert alloc.assignment(step.key) is None, where
    elif step.op == "at":
        assert isinstance(alloc.clock, FakeClock), where
        alloc.clock.now = step.time
        assert sorted(int_to_ip(*h.ip) for h in alloc.expire()) == sorted(step.ips or ()), where
    elif step.op == "holds":
        for key, expected in (step.holds or {}).items():
            assert alloc.assignment(key) == expected, f"{where}: {key}"
    elif step.op == "stats":
        assert step.stats is not None
        name, family, expected = step.stats
        assert alloc.pool_stats(name)[family] == expected, where
    else:
        assert step.req is not None
        before = alloc.assignment(step.req.key)
        restoring = step.op == "restore"
        result = alloc.restore(step.req, step.restore_ips, step.hint) if restoring else alloc.assign(step.req)
        if step.reason is not None:
            assert result.reason is step.reason, f"{where}: {result}"
        if step.ips is not None:
            assert result.ips == step.ips, f"{where}: {result}"
        if step.pool is not None:
            assert result.pool == step.pool, f"{where}: {result}"
        assert result.ok is (result.reason in OK), where
        if result.ok:
            assert alloc.assignment(step.req.key) == (result.ips, result.pool), where
        else:
            assert result.ips == () and result.pool is None and result.message, f"{where}: {result}"
            assert alloc.assignment(step.req.key) == before, f"{where}: a failure changed the holding"
