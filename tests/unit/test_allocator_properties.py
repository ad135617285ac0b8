"""Allocator invariants under random histories (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ironlb.core.addresses import parse_ranges
from ironlb.core.allocator import Allocator, ServiceRequest
from ironlb.core.pools import Pool
from ironlb.core.sharing import Sharing, can_share

POOLS = {
    "small": [Pool("a", tuple(parse_ranges(["203.0.113.0/29"]))), Pool("b", tuple(parse_ranges(["198.51.100.0/30"])))],
    "shrunk": [Pool("a", tuple(parse_ranges(["203.0.113.2-203.0.113.6"])))],
    "grown": [Pool("a", tuple(parse_ranges(["203.0.113.0/28"]))), Pool("b", tuple(parse_ranges(["198.51.100.0/30"])))],
}

requests = st.builds(
    ServiceRequest,
    key=st.sampled_from([f"ns/s{i}" for i in range(12)]),
    sharing_key=st.sampled_from([None, "k1", "k2"]),
    ports=st.sampled_from([(("TCP", 80),), (("TCP", 443),), (("UDP", 53),)]),
    traffic_policy=st.sampled_from(["Cluster", "Local"]),
    requested_pool=st.sampled_from([None, None, "b"]),
)
ops = st.lists(st.one_of(
    st.tuples(st.just("assign"), requests),
    st.tuples(st.just("release"), st.sampled_from([f"ns/s{i}" for i in range(12)])),
    st.tuples(st.just("pools"), st.sampled_from(list(POOLS))),
), max_size=40)


def run(history: list) -> Allocator:
    """Replay a history on a fresh allocator."""
    alloc = Allocator()
    alloc.set_pools(POOLS["small"])
    for op, arg in history:
        if op == "assign":
            alloc.assign(arg)
        elif op == "release":
            alloc.release(arg)
        else:
            alloc.set_pools(POOLS[arg])
    return alloc


@settings(max_examples=150, deadline=None)
@given(ops)
def test_no_ip_held_by_incompatible_services(history: list) -> None:
    alloc = run(history)
    facts = {key: held.facts for key, held in alloc._by_service.items()}
    by_ip: dict[str, list[str]] = {}
    for key, (ips, _) in alloc.assignments().items():
        for ip in ips:
            by_ip.setdefault(ip, []).append(key)
    for ip, keys in by_ip.items():
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                assert can_share(facts[a], facts[b]) is Sharing.COMPATIBLE, (ip, a, b)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_releasing_everything_returns_all_capacity(history: list) -> None:
    alloc = run(history)
    for key in list(alloc.assignments()):
        alloc.release(key)
    for name in alloc.pool_names():
        for size, assigned, available in alloc.pool_stats(name).values():
            assert assigned == 0 and available == size


@settings(max_examples=100, deadline=None)
@given(ops)
def test_same_history_same_assignments(history: list) -> None:
    assert run(history).assignments() == run(history).assignments()


@settings(max_examples=150, deadline=None)
@given(ops)
def test_counts_add_up_without_overlap(history: list) -> None:
    alloc = run(history)
    for name in alloc.pool_names():
        for size, assigned, available in alloc.pool_stats(name).values():
            assert assigned + available == size
