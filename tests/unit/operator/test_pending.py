"""Pending: a release or a pool change finds exactly the pending Services it can unblock, through its indexes."""

from __future__ import annotations

from ironlb.core.allocator import AllocationReason, ServiceRequest
from ironlb.core.pools import Pool, pool_from_spec
from ironlb.operator.pending import Pending

R = AllocationReason


def pool(name: str, *addresses: str, auto: bool = True) -> Pool:
    return pool_from_spec(name, {"addresses": list(addresses), "autoAssign": auto}, {})


def req(key: str, ips: tuple[str, ...] = (), pool_name: str | None = None) -> ServiceRequest:
    return ServiceRequest(key=key, namespace="default", requested_ips=list(ips), requested_pool=pool_name)


def waiting() -> Pending:
    pending = Pending()
    pending.add("d/wants-ip", req("d/wants-ip", ("203.0.113.1",)), R.REQUESTED_IP_IN_USE)
    pending.add("d/full-a", req("d/full-a", pool_name="a"), R.POOL_EXHAUSTED)
    pending.add("d/full-any", req("d/full-any"), R.POOL_EXHAUSTED)
    pending.add("d/no-b", req("d/no-b", pool_name="b"), R.POOL_NOT_FOUND)
    pending.add("d/none", req("d/none"), R.NO_POOL_MATCHES)
    pending.add("d/junk", req("d/junk", ("203.0.113.1",)), R.INVALID_REQUEST)
    return pending


def test_a_release_retries_those_wanting_the_ip_or_room_in_its_pool() -> None:
    pending = waiting()
    assert pending.helped_by_release(["203.0.113.1"], pool("a", "203.0.113.0/30")) == {
        "d/wants-ip", "d/full-a", "d/full-any"}
    assert pending.helped_by_release(["203.0.113.9"], pool("c", "203.0.113.8/30")) == {"d/full-any"}
    assert pending.helped_by_release(["203.0.113.9"], pool("c", "203.0.113.8/30", auto=False)) == set()
    assert pending.helped_by_release(["203.0.113.1"], None) == {"d/wants-ip"}


def test_a_pool_retries_those_naming_it_wanting_its_addresses_or_any_address() -> None:
    pending = waiting()
    assert pending.helped_by_pool(pool("b", "198.51.100.0/30", auto=False)) == {"d/no-b"}
    assert pending.helped_by_pool(pool("c", "203.0.113.0/30")) == {"d/wants-ip", "d/full-any", "d/none"}


def test_a_served_service_leaves_every_index() -> None:
    pending = waiting()
    for key in list(pending):
        pending.discard(key)
    assert len(pending) == 0
    assert pending.helped_by_pool(pool("c", "203.0.113.0/30")) == set()
    assert pending.helped_by_release(["203.0.113.1"], pool("a", "203.0.113.0/30")) == set()
    assert (pending._by_ip, pending._room, pending._by_pool, pending._unnamed) == ({}, {}, {}, set())


def test_waiting_again_for_another_reason_moves_between_indexes() -> None:
    pending = Pending()
    pending.add("d/x", req("d/x", pool_name="a"), R.POOL_NOT_FOUND)
    assert pending.helped_by_release([], pool("a", "203.0.113.0/30")) == set()
    pending.add("d/x", req("d/x", pool_name="a"), R.POOL_EXHAUSTED)
    assert pending.helped_by_release([], pool("a", "203.0.113.0/30")) == {"d/x"}
    assert pending.reason("d/x") is R.POOL_EXHAUSTED
