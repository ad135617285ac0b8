"""Allocator invariants under random histories of assign/restore/release/set_pools (hypothesis)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ironlb.core.addresses import int_to_ip, ip_to_int, is_buggy, parse_ranges
from ironlb.core.allocator import Allocation, AllocationReason, Allocator, ServiceRequest
from ironlb.core.pools import Pool
from ironlb.core.sharing import Sharing, SharingFacts, can_share

V4, V6 = "IPv4", "IPv6"


def pool(name: str, *addresses: str, **kw: Any) -> Pool:
    """A core Pool."""
    return Pool(name, tuple(parse_ranges(addresses)), **kw)


DISJOINT = {
    "base": [pool("auto", "203.0.113.0/29", "2001:db8::/125"),
             pool("manual", "198.51.100.0/30", auto_assign=False),
             pool("team", "198.51.100.8/30", "2001:db8:1::/127", namespaces=("team",), priority=1),
             pool("buggy", "198.19.0.254-198.19.1.1", avoid_buggy_ips=True)],
    "shrunk": [pool("auto", "203.0.113.2-203.0.113.6", "2001:db8::/126"),
               pool("manual", "198.51.100.0/31", auto_assign=False)],
    "grown": [pool("auto", "203.0.113.0/28", "2001:db8::/124"),
              pool("manual", "198.51.100.0/30", auto_assign=False),
              pool("team", "198.51.100.8/29", "2001:db8:1::/126", namespaces=("team",), priority=1),
              pool("buggy", "198.19.0.254-198.19.1.1", avoid_buggy_ips=False)],
}
OVERLAPPING = {
    "overlap": [pool("auto", "203.0.113.0/29", "2001:db8::/126"),
                pool("manual", "203.0.113.4/30", "2001:db8::2-2001:db8::5", auto_assign=False),
                pool("team", "203.0.113.0/30", namespaces=("team",), priority=1)],
    "overlap-shrunk": [pool("auto", "203.0.113.0/29", "2001:db8::/126"),
                       pool("manual", "203.0.113.6/31", auto_assign=False)],
}
CONFIGS = DISJOINT | OVERLAPPING
KEYS = [f"{ns}/s{i}" for ns in ("team", "other") for i in range(4)]
WANTED = ["203.0.113.1", "203.0.113.5", "198.51.100.1", "198.51.100.9", "198.51.100.255", "2001:db8::1",
          "2001:db8:1::1"]
PORTS = [("TCP", 80), ("TCP", 443), ("UDP", 53)]


@st.composite
def requests(draw: st.DrawFn, sharing_heavy: bool = False) -> ServiceRequest:
    """A random ServiceRequest; SHARING_HEAVY narrows it to automatic, mostly shared IPv4."""
    key = draw(st.sampled_from(KEYS[:3] if sharing_heavy else KEYS))
    if sharing_heavy:
        return ServiceRequest(
            key=key, namespace=key.split("/")[0],
            sharing_key=draw(st.sampled_from(["k1", "k1", "k1", "k2", None])),
            requested_pool=draw(st.sampled_from([None, None, "auto", "manual", "team"])),
            ports=(draw(st.sampled_from(PORTS)),),
            traffic_policy=draw(st.sampled_from(["Cluster"] * 4 + ["Local"])),
            selector=draw(st.sampled_from([{}] * 4 + [{"app": "x"}])),
        )
    return ServiceRequest(
        key=key, namespace=key.split("/")[0],
        ip_families=draw(st.sampled_from([[V4], [V4], [V6], [V4, V6], [V6, V4]])),
        ip_family_policy=draw(st.sampled_from(["SingleStack", "SingleStack", "PreferDualStack",
                                               "RequireDualStack"])),
        requested_ips=draw(st.one_of(st.just([]), st.just([]), st.lists(st.sampled_from(WANTED), max_size=2,
                                                                              unique=True))),
        requested_pool=draw(st.sampled_from([None, None, None, "manual", "team", "nope"])),
        sharing_key=draw(st.sampled_from([None, None, "k1", "k2"])),
        ports=tuple(sorted(draw(st.sets(st.sampled_from(PORTS), min_size=1, max_size=2)))),
        traffic_policy=draw(st.sampled_from(["Cluster", "Local"])),
        selector=draw(st.sampled_from([{}, {"app": "x"}])),
    )


def histories(configs: list[str], sharing_heavy: bool = False) -> st.SearchStrategy[tuple[str, list[Any]]]:
    """(initial config, ops) where an op assigns, restores, releases or replaces the pools."""
    if sharing_heavy:  # mostly assignments: re-assignments with changed ports are what matter here
        shared = st.one_of(*[st.tuples(st.just("assign"), requests(True))] * 6,
                           st.tuples(st.just("release"), st.sampled_from(KEYS[:3])),
                           st.tuples(st.just("pools"), st.sampled_from(configs)))
        return st.tuples(st.sampled_from(configs), st.lists(shared, min_size=15, max_size=40))
    op = st.one_of(
        st.tuples(st.just("assign"), requests(sharing_heavy)),
        st.tuples(st.just("assign"), requests(sharing_heavy)),
        st.tuples(st.just("restore"), requests(sharing_heavy),
                  st.lists(st.sampled_from(WANTED), min_size=1, max_size=2, unique=True)),
        st.tuples(st.just("release"), st.sampled_from(KEYS)),
        st.tuples(st.just("pools"), st.sampled_from(configs)),
    )
    return st.tuples(st.sampled_from(configs), st.lists(op, max_size=40))


@dataclass
class Trace:
    """A replay: the allocator, the config in force, each outcome, and who holds under which facts."""

    alloc: Allocator
    config: str
    outcomes: list[Any] = field(default_factory=list)
    facts: dict[str, SharingFacts] = field(default_factory=dict)
    lowest_free_violations: list[str] = field(default_factory=list)


def usable(p: Pool, family: str) -> list[int]:
    """Every address a (small) pool may hand out in a family, lowest first."""
    return [v for r in p.ranges if r.family == family for v in range(r.first, r.last + 1)
            if not (p.avoid_buggy_ips and is_buggy(family, v))]


def held_ips(alloc: Allocator) -> set[str]:
    """Every IP some Service holds."""
    return {ip for ips, _ in alloc.assignments().values() for ip in ips}


def check_lowest_free(trace: Trace, req: ServiceRequest, before: set[str], result: Allocation) -> None:
    """A fresh, non-shared, automatic assignment takes the lowest address nobody held in its pool."""
    chosen = next(p for p in CONFIGS[trace.config] if p.name == result.pool)
    for ip in result.ips:
        family = ip_to_int(ip)[0]
        lowest = next(v for v in usable(chosen, family) if int_to_ip(family, v) not in before)
        if ip != int_to_ip(family, lowest):
            expected = int_to_ip(family, lowest)
            trace.lowest_free_violations.append(f"{req.key} got {ip}, lowest free was {expected}")


def replay(start: str, ops: list[tuple[Any, ...]], check: Callable[[Trace], None] | None = None) -> Trace:
    """Run a history on a fresh allocator, keeping the model up to date; CHECK runs after every step."""
    trace = Trace(Allocator(), start)
    trace.outcomes.append(trace.alloc.set_pools(CONFIGS[start]))
    for op in ops:
        if op[0] == "pools":
            trace.config = op[1]
            uncovered = trace.alloc.set_pools(CONFIGS[trace.config])
            for key in uncovered:
                del trace.facts[key]
            trace.outcomes.append(uncovered)
        elif op[0] == "release":
            trace.outcomes.append(trace.alloc.release(op[1]))
            trace.facts.pop(op[1], None)
        else:
            req = op[1]
            before, had = held_ips(trace.alloc), trace.alloc.assignment(req.key)
            result = trace.alloc.assign(req) if op[0] == "assign" else trace.alloc.restore(req, op[2])
            trace.outcomes.append(result)
            if result.ok:
                trace.facts[req.key] = req.facts()
            fresh = op[0] == "assign" and had is None and not req.requested_ips and not req.sharing_key
            if fresh and result.reason is AllocationReason.ASSIGNED:
                check_lowest_free(trace, req, before, result)
        if check is not None:
            check(trace)
    return trace


@settings(max_examples=150, deadline=None)
@given(st.one_of(histories(list(CONFIGS)), histories(list(CONFIGS), sharing_heavy=True)))
def test_no_ip_is_held_by_two_services_unless_they_may_share(history: tuple[str, list[Any]]) -> None:
    """(a) After every step, all holders of one IP are pairwise COMPATIBLE under the facts last granted."""
    replay(*history, check=sharing_is_sound)


def sharing_is_sound(trace: Trace) -> None:
    """The model's Services are exactly the holders, and co-holders may share."""
    assignments = trace.alloc.assignments()
    assert set(assignments) == set(trace.facts)
    by_ip: dict[str, list[str]] = {}
    for key, (ips, _) in assignments.items():
        for ip in ips:
            by_ip.setdefault(ip, []).append(key)
    for ip, keys in by_ip.items():
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                verdict = can_share(trace.facts[a], trace.facts[b])
                assert verdict is Sharing.COMPATIBLE, (ip, a, b, verdict)


@settings(max_examples=150, deadline=None)
@given(histories(list(CONFIGS)))
def test_holdings_are_well_formed(history: tuple[str, list[Any]]) -> None:
    """Held IPs lie in their existing pool, are not buggy there; a Service holds one IP per family."""
    trace = replay(*history)
    pools = {p.name: p for p in CONFIGS[trace.config]}
    for key, (ips, pool_name) in trace.alloc.assignments().items():
        assert ips and pool_name in pools, key
        families = [ip_to_int(ip)[0] for ip in ips]
        assert len(set(families)) == len(families), (key, ips)
        for ip in ips:
            assert ip_to_int(ip)[1] in usable(pools[pool_name], ip_to_int(ip)[0]), (key, ip, pool_name)
    for outcome in trace.outcomes:
        if isinstance(outcome, Allocation) and not outcome.ok:
            assert outcome.ips == () and outcome.message


@settings(max_examples=150, deadline=None)
@given(histories(list(CONFIGS)))
def test_automatic_assignment_takes_the_lowest_free_address(history: tuple[str, list[Any]]) -> None:
    """A fresh automatic, unshared assignment gets the lowest usable address nobody holds."""
    assert replay(*history).lowest_free_violations == []


@settings(max_examples=150, deadline=None)
@given(histories(list(CONFIGS)))
def test_releasing_everything_restores_every_pool(history: tuple[str, list[Any]]) -> None:
    """(b) After releasing every Service, each pool's available count equals its size."""
    trace = replay(*history)
    for key in KEYS:
        trace.alloc.release(key)
    assert trace.alloc.assignments() == {}
    for name in trace.alloc.pool_names():
        for family, (size, assigned, available) in trace.alloc.pool_stats(name).items():
            assert (assigned, available) == (0, size), (name, family)


@settings(max_examples=150, deadline=None)
@given(histories(list(CONFIGS)))
def test_same_history_same_result(history: tuple[str, list[Any]]) -> None:
    """(c) Two fresh allocators fed the same history agree on every outcome and the final state."""
    one, two = replay(*history), replay(*history)
    assert one.outcomes == two.outcomes
    assert one.alloc.assignments() == two.alloc.assignments()
    assert {n: one.alloc.pool_stats(n) for n in one.alloc.pool_names()} == {
        n: two.alloc.pool_stats(n) for n in two.alloc.pool_names()}


@settings(max_examples=150, deadline=None)
@given(histories(list(DISJOINT)))
def test_counts_add_up_when_pools_do_not_overlap(history: tuple[str, list[Any]]) -> None:
    """(d) After every step, per pool and family: assigned + available == size == held + free."""
    replay(*history, check=counts_add_up)


def counts_add_up(trace: Trace) -> None:
    """Without overlaps, a pool's assigned count is exactly the held IPs it contains."""
    held = held_ips(trace.alloc)
    for p in CONFIGS[trace.config]:
        for family, (size, assigned, available) in trace.alloc.pool_stats(p.name).items():
            addresses = usable(p, family)
            assert size == len(addresses)
            assert assigned + available == size, (p.name, family)
            assert assigned == sum(int_to_ip(family, v) in held for v in addresses), (p.name, family)


@settings(max_examples=150, deadline=None)
@given(st.one_of(histories(list(OVERLAPPING)), histories(list(OVERLAPPING), sharing_heavy=True)))
def test_counts_stay_consistent_with_overlapping_pools(history: tuple[str, list[Any]]) -> None:
    """After every step, even with overlaps: free means held by nobody, and each held IP is counted once."""
    replay(*history, check=counts_consistent)


def counts_consistent(trace: Trace) -> None:
    """Available = usable addresses nobody holds; each held IP is counted once, by a pool one holder uses."""
    held = held_ips(trace.alloc)
    by_pool: dict[str, set[str]] = {}
    for ips, pool_name in trace.alloc.assignments().values():
        by_pool.setdefault(pool_name, set()).update(ips)
    totals = {V4: 0, V6: 0}
    for p in CONFIGS[trace.config]:
        for family, (size, assigned, available) in trace.alloc.pool_stats(p.name).items():
            addresses = usable(p, family)
            inside = sum(int_to_ip(family, v) in held for v in addresses)
            assert (size, available) == (len(addresses), len(addresses) - inside), (p.name, family)
            ours = sum(ip_to_int(ip)[0] == family for ip in by_pool.get(p.name, ()))
            assert 0 <= assigned <= ours, (p.name, family)
            totals[family] += assigned
    assert totals == {f: sum(ip_to_int(ip)[0] == f for ip in held) for f in (V4, V6)}
