"""Tenants against the reconciler and its fake API: no squatting on a released IP (reuse holds, across
a restart too), no sharing across namespaces by default, and retries only for those a change can help."""

from __future__ import annotations

import pytest

from ironlb.api.reasons import ConditionType
from ironlb.operator.reconciler import Reconciler
from tests.unit.operator.test_reconciler_scenarios import IPS_ANN, SHARED_ANN, Harness, pool, svc

HELD_IP = "203.0.113.5"


def requesting(name: str, namespace: str, ip: str = HELD_IP) -> dict:
    """A Service in NAMESPACE asking for IP."""
    return svc(name, namespace=namespace, annotations={IPS_ANN: ip})


@pytest.mark.parametrize("restart", [False, True], ids=["running", "after-restart"])
async def test_a_recreated_service_gets_its_ip_back_not_the_other_namespace(restart: bool) -> None:
    """B asks for A's IP and is refused; A deletes and recreates its Service: A gets the IP back, B never
    shows it (the hold is recorded in the pool's status, so a new leader keeps it)."""
    harness = Harness({"pools": [pool("p", "203.0.113.0/29")]}, reuse_delay=300)
    try:
        await harness.run(("svc", requesting("web", "a")))
        await harness.run(("shows", "a/web", HELD_IP))
        await harness.run(("svc", requesting("squat", "b")))
        await harness.run(("event", "b/squat", "AllocationFailed", "(RequestedIPInUse)"))
        await harness.run(("unsvc", "a/web"))
        await harness.run(("shows", "b/squat"))
        await harness.run(("event", "b/squat", "AllocationFailed", "(RequestedIPHeld)"))
        held = harness.api.pool_status["p"]["heldIPs"]
        assert [(h["ip"], h["namespace"], h["service"]) for h in held] == [(HELD_IP, "a", "web")]
        if restart:
            await harness.run(("restart",))
            await harness.run(("shows", "b/squat"))
        await harness.run(("svc", requesting("web", "a")))
        await harness.run(("shows", "a/web", HELD_IP))
        await harness.run(("shows", "b/squat"))
        assert harness.api.pool_status["p"]["heldIPs"] == []
        assert harness.api.violations == []
    finally:
        await harness.reconciler.stop()


async def test_a_hold_ends_on_time_and_the_waiting_request_is_served_then() -> None:
    """Once the hold ends, the other namespace's pending request is retried (no event needed) and served."""
    harness = Harness({"pools": [pool("p", "203.0.113.0/29")]}, reuse_delay=0.6)
    try:
        await harness.run(("svc", requesting("web", "a")))
        await harness.run(("svc", requesting("squat", "b")))
        harness.api.delete_service("a/web")
        await harness.settle(quiet=0.1)
        assert harness.api.shown("b/squat") == ()
        cond = harness.api.condition("b/squat", ConditionType.SERVICE_ALLOCATED.value)
        assert cond and (cond["status"], cond["reason"]) == ("False", "RequestedIPHeld"), cond
        await harness.settle(quiet=1.0)
        await harness.run(("shows", "b/squat", HELD_IP))
        cond = harness.api.condition("b/squat", ConditionType.SERVICE_ALLOCATED.value)
        assert cond and cond["status"] == "True", cond
    finally:
        await harness.reconciler.stop()


async def test_sharing_key_does_not_join_another_namespaces_ip_unless_the_pool_allows() -> None:
    """Same key, other ports: the same namespace shares, another namespace gets its own IP; a pool with
    allowSharedIPAcrossNamespaces lets it share."""
    open_pool = pool("open", "198.51.100.0/30", autoAssign=False, allowSharedIPAcrossNamespaces=True)
    harness = Harness({"pools": [pool("p", "203.0.113.0/30"), open_pool]})

    def sharer(name: str, namespace: str, port: int, **ann: str) -> dict:
        body = svc(name, namespace=namespace, annotations={SHARED_ANN: "k", **ann})
        body["spec"]["ports"] = [{"port": port, "protocol": "TCP"}]
        return body
    try:
        for step in [("svc", sharer("web", "a", 80)), ("shows", "a/web", "203.0.113.0"),
                     ("svc", sharer("api", "a", 443)), ("shows", "a/api", "203.0.113.0"),
                     ("svc", sharer("evil", "b", 8080)), ("shows", "b/evil", "203.0.113.1"),
                     ("svc", sharer("evil2", "b", 8081, **{IPS_ANN: "203.0.113.0"})), ("shows", "b/evil2"),
                     ("event", "b/evil2", "AllocationFailed", "different-namespace"),
                     ("svc", sharer("o1", "a", 80, **{"ironlb.io/address-pool": "open"})),
                     ("svc", sharer("o2", "b", 443, **{"ironlb.io/address-pool": "open"})),
                     ("shows", "a/o1", "198.51.100.0"), ("shows", "b/o2", "198.51.100.0")]:
            await harness.run(step)
    finally:
        await harness.reconciler.stop()


async def test_a_release_retries_only_the_pending_services_it_can_help() -> None:
    """Many Services that can never be served (a pool reserved for another namespace) and one that waits for
    the released IP: the release reconciles the one, none of the others."""
    team = pool("team", "203.0.113.8/30", autoAssign=False, serviceAllocation={"namespaces": ["team"]})
    harness = Harness({"pools": [pool("p", "203.0.113.0/30"), team]})
    try:
        await harness.run(("svc", requesting("holder", "x", "203.0.113.1")))
        await harness.run(("svc", requesting("waiter", "x", "203.0.113.1")))
        for i in range(40):
            harness.api.put_service(svc(f"never{i}", namespace="evil", annotations={"ironlb.io/address-pool": "team"}))
        await harness.settle()
        assert len(harness.reconciler.state.pending) == 41
        woken = _record_enqueues(harness.reconciler)
        await harness.run(("unsvc", "x/holder"))
        await harness.run(("shows", "x/waiter", "203.0.113.1"))
        assert {k for k in woken if not k.startswith(("pool:", "advertisement:"))} == {"x/holder", "x/waiter"}
    finally:
        await harness.reconciler.stop()


async def test_non_loadbalancer_services_are_not_kept() -> None:
    """A ClusterIP Service that was never ours leaves nothing in the reconciler's state."""
    harness = Harness({"pools": [pool("p", "203.0.113.0/30")]})
    try:
        for i in range(20):
            harness.api.put_service({**svc(f"c{i}"), "spec": {"type": "ClusterIP"}})
        await harness.settle()
        assert harness.reconciler.state.services == {}
    finally:
        await harness.reconciler.stop()


def _record_enqueues(rec: Reconciler) -> list[str]:
    seen: list[str] = []
    enqueue = rec.enqueue

    def recording(key: str) -> None:
        seen.append(key)
        enqueue(key)
    rec.enqueue = recording  # type: ignore[method-assign]
    return seen


async def test_a_pool_event_retries_only_the_pending_services_it_concerns() -> None:
    """A new pool that names nobody's request and serves no automatic one retries nothing; the pool a pending
    Service names retries that one."""
    harness = Harness({"pools": [pool("team", "203.0.113.8/30", autoAssign=False,
                                      serviceAllocation={"namespaces": ["team"]})]})
    try:
        for i in range(20):
            harness.api.put_service(svc(f"never{i}", namespace="evil", annotations={"ironlb.io/address-pool": "team"}))
        harness.api.put_service(svc("later", namespace="x", annotations={"ironlb.io/address-pool": "later"}))
        await harness.settle()
        woken = _record_enqueues(harness.reconciler)
        await harness.run(("pool", pool("unrelated", "198.51.100.0/30", autoAssign=False)))
        assert {k for k in woken if not k.startswith(("pool:", "advertisement:"))} == set()
        await harness.run(("pool", pool("later", "198.51.100.8/30", autoAssign=False)))
        await harness.run(("shows", "x/later", "198.51.100.8"))
        assert {k for k in woken if not k.startswith(("pool:", "advertisement:"))} == {"x/later"}
    finally:
        await harness.reconciler.stop()
