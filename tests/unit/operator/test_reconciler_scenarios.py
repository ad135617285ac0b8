"""Reconciler scenario tables, run against a fake API that refuses stale writes and checks, after
every write, that no two Services show one IP unless they share it.

Each scenario starts from a cluster (pools, Services, namespaces) that the reconciler restores,
then runs steps; after each change the reconciler settles before the next step is checked.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ironlb.operator.reconciler import AllocationEvents, Reconciler
from tests.unit.operator.fake_api import FakeApi

POOL_ANN, IPS_ANN, SHARED_ANN = "ironlb.io/address-pool", "ironlb.io/loadBalancerIPs", "ironlb.io/allow-shared-ip"


def svc(name: str, namespace: str = "default", annotations: dict[str, str] | None = None,
        ingress: tuple[str, ...] = (), pool: str | None = None, labels: dict[str, str] | None = None,
        **spec: Any) -> dict[str, Any]:
    """A LoadBalancer Service body (optionally already showing INGRESS, written from POOL)."""
    ann = dict(annotations or {})
    if pool:
        ann["ironlb.io/allocated-from-pool"] = pool
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": namespace, "annotations": ann, "labels": labels or {}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}], **spec}}
    if ingress:
        body["status"] = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in ingress]}}
    return body


def pool(name: str, *addresses: str, **spec: Any) -> dict[str, Any]:
    """An IPAddressPool body."""
    return {"metadata": {"name": name, "uid": f"uid-{name}", "generation": 1},
            "spec": {"addresses": list(addresses), **spec}, "status": {}}


def advertisement(name: str, *pools: str, selectors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An L2Advertisement body naming POOLS (none: every pool), or selecting them by label."""
    spec: dict[str, Any] = {"ipAddressPools": list(pools)} if pools else {}
    if selectors:
        spec["ipAddressPoolSelectors"] = selectors
    return {"metadata": {"name": name, "uid": f"uid-{name}", "generation": 1}, "spec": spec, "status": {}}


# Steps: (op, *args). Changes: pool, unpool, svc, unsvc, ns, fence, ad, unad.
# Checks: shows, event, no_event, condition (pools), ad_condition (advertisements).
Step = tuple[Any, ...]
Scenario = tuple[dict[str, Any], list[Step]]
TEAM_ONLY = {"autoAssign": False, "serviceAllocation": {"namespaces": ["team"]}}

SCENARIOS: dict[str, Scenario] = {
    "a pool no advertisement announces says so, until one does": (
        {"pools": [pool("p", "203.0.113.0/30")]},
        [("condition", "p", "Announced", "False", "no L2Advertisement announces this pool"),
         ("event", "p", "NoL2Advertisement", "no node answers ARP/NDP"),
         ("ad", advertisement("l2", "p")), ("condition", "p", "Announced", "True", "announced by L2Advertisement l2"),
         ("no_event", "p", "Announced"),
         ("ad_condition", "l2", "MissingPools", "False", "every pool named exists"),
         ("unad", "l2"), ("condition", "p", "Announced", "False", "no L2Advertisement")]),
    "an advertisement naming no pool announces every pool, one selecting by label only those": (
        {"pools": [pool("p", "203.0.113.0/30"), {**pool("q", "203.0.113.8/30"),
                                                   "metadata": {"name": "q", "labels": {"tier": "edge"}}}],
         "advertisements": [advertisement("edge", selectors=[{"matchLabels": {"tier": "edge"}}])]},
        [("condition", "q", "Announced", "True", "edge"), ("condition", "p", "Announced", "False", "no L2"),
         ("ad", advertisement("all")), ("condition", "p", "Announced", "True", "all"),
         ("condition", "q", "Announced", "True", "all, edge")]),
    "an advertisement naming a missing pool says which, until the pool exists": (
        {"pools": [pool("p", "203.0.113.0/30")], "advertisements": [advertisement("l2", "p", "typo")]},
        [("ad_condition", "l2", "MissingPools", "True", "no IPAddressPool named typo"),
         ("event", "l2", "PoolNotFound", "no IPAddressPool named typo"),
         ("pool", pool("typo", "203.0.113.8/30")),
         ("ad_condition", "l2", "MissingPools", "False", "every pool named exists"),
         ("unpool", "p"), ("ad_condition", "l2", "MissingPools", "True", "named p:")]),
    "restore keeps every IP, a new Service gets the lowest free one": (
        {"pools": [pool("p", "203.0.113.0/29")],
         "services": [svc("a", ingress=("203.0.113.0",), pool="p"), svc("b", ingress=("203.0.113.2",), pool="p")]},
        [("shows", "default/a", "203.0.113.0"), ("shows", "default/b", "203.0.113.2"),
         ("svc", svc("c")), ("shows", "default/c", "203.0.113.1"),
         ("no_event", "default/a", "IPAllocated"), ("no_event", "default/c", "IPAllocated")]),
    "restore finds one IP shown twice: the first keeps it, the second moves": (
        {"pools": [pool("p", "203.0.113.0/30")],
         "services": [svc("a", ingress=("203.0.113.0",), pool="p"), svc("b", ingress=("203.0.113.0",), pool="p")]},
        [("shows", "default/a", "203.0.113.0"), ("shows", "default/b", "203.0.113.1")]),
    "pool deleted with no room elsewhere: the IP leaves status, and is never shown twice": (
        {"pools": [pool("a", "203.0.113.200")], "services": [svc("one", ingress=("203.0.113.200",), pool="a")]},
        [("unpool", "a"), ("shows", "default/one"), ("annotation", "default/one", None),
         ("event", "default/one", "AllocationFailed", "no auto-assign pool serves this Service"),
         ("svc", svc("two")), ("pool", pool("b", "203.0.113.200")),
         ("shows_one_of", ("default/one", "default/two"), "203.0.113.200")]),
    "pool shrunk: the uncovered Service moves to a free address": (
        {"pools": [pool("p", "203.0.113.0/29")],
         "services": [svc("a", ingress=("203.0.113.0",), pool="p"), svc("b", ingress=("203.0.113.7",), pool="p")]},
        [("pool", pool("p", "203.0.113.0/30")), ("shows", "default/b", "203.0.113.1"),
         ("shows", "default/a", "203.0.113.0"), ("event", "default/b", "IPAllocated", "203.0.113.1"),
         ("no_event", "default/a", "IPAllocated")]),
    "an invalid edit keeps the last valid spec and says Invalid": (
        {"pools": [pool("p", "2001:db8:ffff::10-2001:db8:ffff::20")],
         "services": [svc("a", ingress=("2001:db8:ffff::10",), pool="p", ipFamilies=["IPv6"])]},
        [("pool", pool("p", "2001:db8:ffff::20-2001:db8:ffff::10")),
         ("condition", "p", "Invalid", "True", "keeps serving its last valid spec"),
         ("shows", "default/a", "2001:db8:ffff::10"),
         ("svc", svc("b", ipFamilies=["IPv6"])), ("shows", "default/b", "2001:db8:ffff::11"),
         ("pool", pool("p", "2001:db8:ffff::10-2001:db8:ffff::12")),
         ("condition", "p", "Invalid", "False", "valid"), ("shows", "default/b", "2001:db8:ffff::11")]),
    "a class change hands the Service back: our IP and annotation are taken off": (
        {"pools": [pool("p", "203.0.113.0/30")], "services": [svc("a", ingress=("203.0.113.0",), pool="p")]},
        [("svc", svc("a", ingress=("203.0.113.0",), pool="p", loadBalancerClass="example.com/other")),
         ("shows", "default/a"), ("annotation", "default/a", None),
         ("event", "default/a", "IPReleased", "other-loadbalancer-class"),
         ("svc", svc("b")), ("shows", "default/b", "203.0.113.0")]),
    "a type change to ClusterIP releases the IP": (
        {"pools": [pool("p", "203.0.113.0/30")], "services": [svc("a", ingress=("203.0.113.0",), pool="p")]},
        [("svc", {**svc("a", ingress=("203.0.113.0",), pool="p"), "spec": {"type": "ClusterIP"}}),
         ("shows", "default/a"), ("svc", svc("b")), ("shows", "default/b", "203.0.113.0")]),
    "namespace relabel moves a Service out of a selected pool": (
        {"pools": [pool("prod", "203.0.113.10", serviceAllocation={"namespaceSelectors": [
            {"matchLabels": {"env": "prod"}}]}), pool("general", "198.51.100.0/30")],
         "services": [svc("a", namespace="shop")], "namespaces": {"shop": {"env": "prod"}}},
        [("shows", "shop/a", "203.0.113.10"), ("ns", "shop", {"env": "dev"}), ("shows", "shop/a", "198.51.100.0")]),
    "a pool annotation does not cross serviceAllocation.namespaces": (
        {"pools": [pool("team", "203.0.113.200", **TEAM_ONLY)], "services": []},
        [("svc", svc("x", namespace="evil", annotations={POOL_ANN: "team"})), ("shows", "evil/x"),
         ("event", "evil/x", "AllocationFailed", "serves only namespaces team (serviceAllocation.namespaces)"),
         ("svc", svc("y", namespace="team", annotations={POOL_ANN: "team"})), ("shows", "team/y", "203.0.113.200")]),
    "a requested IP and spec.loadBalancerIP do not cross it either": (
        {"pools": [pool("team", "203.0.113.200", **TEAM_ONLY)], "services": []},
        [("svc", svc("x", namespace="evil", annotations={IPS_ANN: "203.0.113.200"})), ("shows", "evil/x"),
         ("event", "evil/x", "AllocationFailed", "requested 203.0.113.200: pool team serves only namespaces team"),
         ("svc", svc("z", namespace="evil", loadBalancerIP="203.0.113.200")), ("shows", "evil/z"),
         ("event", "evil/z", "AllocationFailed", "serviceAllocation.namespaces")]),
    "restore does not let a Service keep an IP its pool no longer serves it": (
        {"pools": [pool("team", "203.0.113.200", **TEAM_ONLY), pool("general", "198.51.100.0/30")],
         "services": [svc("x", namespace="evil", ingress=("203.0.113.200",), pool="team")]},
        [("shows", "evil/x", "198.51.100.0")]),
    "sharing: two Services with one key and different ports show one IP": (
        {"pools": [pool("p", "203.0.113.0/30")], "services": []},
        [("svc", svc("a", annotations={SHARED_ANN: "k"})), ("shows", "default/a", "203.0.113.0"),
         ("svc", {**svc("b", annotations={SHARED_ANN: "k"}), "spec": {
             "type": "LoadBalancer", "ports": [{"port": 443, "protocol": "TCP"}]}}),
         ("shows", "default/b", "203.0.113.0")]),
    "junk in the request is a clear Event, and changes nobody else": (
        {"pools": [pool("p", "203.0.113.0/30")], "services": [svc("a", ingress=("203.0.113.0",), pool="p")]},
        [("svc", svc("bad", annotations={IPS_ANN: "203.0.113.1,203.0.113.2"})),
         ("event", "default/bad", "AllocationFailed", "two addresses of the same family"),
         ("svc", svc("bad2", annotations={IPS_ANN: "2001:db8::/64"})),
         ("event", "default/bad2", "AllocationFailed", "is not an IP address"),
         ("shows", "default/bad"), ("shows", "default/bad2"), ("shows", "default/a", "203.0.113.0")]),
    "takeover: IPs another implementation wrote are kept, with MetalLB's pool annotation as the hint": (
        {"pools": [pool("first", "203.0.113.0/30"), pool("same", "203.0.113.0/30")],
         "services": [svc("m1", ingress=("203.0.113.2",), annotations={"metallb.io/ip-allocated-from-pool": "same"}),
                      svc("m2", ingress=("203.0.113.0",)), svc("out", ingress=("192.0.2.250",))]},
        [("shows", "default/m1", "203.0.113.2"), ("annotation", "default/m1", "same"),
         ("shows", "default/m2", "203.0.113.0"), ("annotation", "default/m2", "first"),
         ("shows", "default/out", "203.0.113.1"), ("no_event", "default/m1", "IPAllocated")]),
    "lease lost mid-way: nothing is written, the next leader finishes the job": (
        {"pools": [pool("p", "203.0.113.0/30")], "services": []},
        [("fence", True), ("svc", svc("a")), ("shows", "default/a"), ("no_event", "default/a", "IPAllocated"),
         ("fence", False), ("restart",), ("shows", "default/a", "203.0.113.0")]),
}


class Harness:
    """A reconciler wired to a FakeApi, restored from a starting cluster."""

    def __init__(self, start: dict[str, Any], reuse_delay: float = 0.0,
                 allocation_events: AllocationEvents = AllocationEvents.MOVES, **options: Any) -> None:
        self.api = FakeApi()
        self.options = options  # more Reconciler arguments (withdrawal_timeout)
        self.reuse_delay = reuse_delay
        self.allocation_events = allocation_events
        self.pools = {p["metadata"]["name"]: p for p in start.get("pools", [])}
        self.ads = {a["metadata"]["name"]: a for a in start.get("advertisements", [])}
        self.namespaces: dict[str, dict[str, str]] = dict(start.get("namespaces", {}))
        for body in start.get("services", []):
            self.api.put_service(body)
        self.api.violations.clear()  # a starting cluster may be broken already: only what we write counts
        self.reconciler = self._boot()

    def _boot(self) -> Reconciler:
        rec = Reconciler(self.api, lb_class=None, allocation_events=self.allocation_events,
                         **({"reuse_delay": self.reuse_delay} if self.reuse_delay else {}), **self.options)
        self.api.reconciler = rec
        # A new leader reads the pools as the API holds them: with the status the last one wrote.
        pools = [{**body, "status": self.api.pool_status.get(name, body.get("status") or {})}
                 for name, body in self.pools.items()]
        rec.restore(list(self.api.services.values()), pools, self.namespaces, list(self.ads.values()))
        rec.start()
        return rec

    async def restart(self) -> None:
        """A new leader: a fresh reconciler restores from what the API holds."""
        await self.reconciler.stop()
        self.reconciler = self._boot()

    async def settle(self, quiet: float = 0.4, limit: float = 5.0) -> None:
        """Wait until nothing has been written for QUIET seconds (retries included)."""
        loop = asyncio.get_running_loop()
        deadline, seen, since = loop.time() + limit, -1, loop.time()
        while loop.time() < deadline:
            await asyncio.sleep(0.02)
            busy = self.reconciler._queued or self.reconciler._inflight or self.reconciler._rechecking
            if len(self.api.calls) != seen or busy:
                seen, since = len(self.api.calls), loop.time()
            elif loop.time() - since >= quiet:
                return

    async def run(self, step: Step) -> None:
        """Apply one change, or check one expectation."""
        op, *args = step
        rec, api = self.reconciler, self.api
        if op == "pool":
            self.pools[args[0]["metadata"]["name"]] = args[0]
            rec.pool_event(args[0], deleted=False)
        elif op == "unpool":
            rec.pool_event(self.pools.pop(args[0]), deleted=True)
        elif op == "svc":
            api.put_service(args[0])
        elif op == "unsvc":
            api.delete_service(args[0])
        elif op == "ns":
            self.namespaces[args[0]] = args[1]
            rec.namespace_event(args[0], args[1])
        elif op == "ad":
            self.ads[args[0]["metadata"]["name"]] = args[0]
            rec.advertisement_event(args[0], deleted=False)
        elif op == "unad":
            rec.advertisement_event(self.ads.pop(args[0]), deleted=True)
        elif op == "fence":
            api.fenced = args[0]
        elif op == "restart":
            await self.restart()
        await self.settle()
        self.check(op, args)

    def check(self, op: str, args: list[Any]) -> None:
        """The expectation steps."""
        api, alloc = self.api, self.reconciler.allocator
        if op == "shows":
            assert api.shown(args[0]) == tuple(args[1:]), f"{args[0]} shows {api.shown(args[0])}"
            if not api.fenced:  # status shows exactly what the allocator grants
                held = alloc.assignment(args[0])
                assert (held[0] if held else ()) == tuple(args[1:]), f"{args[0]}: allocator holds {held}"
        elif op == "shows_one_of":
            showing = [k for k in args[0] if args[1] in api.shown(k)]
            assert len(showing) == 1, f"{args[1]} shown by {showing}"
        elif op == "annotation":
            assert api.annotation(args[0]) == args[1]
        elif op in ("event", "no_event"):
            found = [e for e in api.events if e[0] == args[0] and e[1] == args[1]]
            if op == "no_event":
                assert not found, found
            else:
                assert any(args[2] in e[2] for e in found), f"no {args[1]} with {args[2]!r}: {api.events}"
        elif op == "condition":
            cond = next(c for c in api.pool_status[args[0]]["conditions"] if c["type"] == args[1])
            assert cond["status"] == args[2] and args[3] in cond["message"], cond
        elif op == "ad_condition":
            cond = next(c for c in api.advertisement_status[args[0]]["conditions"] if c["type"] == args[1])
            assert cond["status"] == args[2] and args[3] in cond["message"], cond


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_scenario(name: str) -> None:
    """Run the steps; the no-two-Services-one-IP invariant holds after every write."""
    start, steps = SCENARIOS[name]
    harness = Harness(start)
    try:
        await harness.settle()
        for i, step in enumerate(steps):
            try:
                await harness.run(step)
            except AssertionError as exc:
                raise AssertionError(f"step {i} {step[0]}: {exc}") from exc
        assert harness.api.violations == []
    finally:
        await harness.reconciler.stop()


async def test_stale_write_is_refused_and_decided_again() -> None:
    """A write made on an old resourceVersion gets 409, and the Service is reconciled again on the new one."""
    harness = Harness({"pools": [pool("p", "203.0.113.0/30")], "services": []})
    try:
        harness.api.interfere["default/a"] = svc("a", labels={"edited": "yes"})
        harness.api.put_service(svc("a"))
        await harness.settle()
        results = [c.result.value for c in harness.api.calls if c.target == "default/a"]
        assert results[0] == "conflict" and results[-1] == "written", results
        assert harness.api.shown("default/a") == ("203.0.113.0",)
        assert harness.api.services["default/a"]["metadata"]["labels"] == {"edited": "yes"}
    finally:
        await harness.reconciler.stop()


async def test_an_allocation_is_one_write_and_its_echo_costs_nothing() -> None:
    """Ingress and annotation land in one write; the watch's echo of it causes no second one."""
    harness = Harness({"pools": [pool("p", "203.0.113.0/30")], "services": []})
    try:
        harness.api.put_service(svc("a"))
        await harness.settle()
        assert [(c.op, c.value, c.result.value) for c in harness.api.calls] == [
            ("service", ([{"ip": "203.0.113.0", "ipMode": "VIP"}], "p"), "written")]
        assert [e for e in harness.api.events if e[0] == "default/a"] == []  # the status write says it all
    finally:
        await harness.reconciler.stop()


async def test_every_allocation_has_its_event_when_asked() -> None:
    """With AllocationEvents.ALL a first assignment gets its IPAllocated Event too."""
    harness = Harness({"pools": [pool("p", "203.0.113.0/30")], "services": []},
                      allocation_events=AllocationEvents.ALL)
    try:
        harness.api.put_service(svc("a"))
        await harness.settle()
        assert [e[1:3] for e in harness.api.events if e[0] == "default/a"] == [
            ("IPAllocated", "Assigned IP 203.0.113.0 from pool p")]
    finally:
        await harness.reconciler.stop()


async def test_freed_ips_wait_for_each_other_without_deadlock() -> None:
    """Each of two Services must move to the IP the other shows: each first takes its own off, then
    waits for the other's clear; at no moment do two Services show one IP."""
    only = {"autoAssign": True}
    start = {"pools": [pool("pa", "203.0.113.1", serviceAllocation={"namespaces": ["a"]}, **only),
                       pool("pb", "203.0.113.0", serviceAllocation={"namespaces": ["b"]}, **only)],
             "services": [svc("k", namespace="a", ingress=("203.0.113.0",), pool="pb"),
                          svc("l", namespace="b", ingress=("203.0.113.1",), pool="pa")]}
    harness = Harness(start)
    try:
        await harness.settle(limit=8)
        assert harness.api.violations == []
        assert harness.api.shown("a/k") == ("203.0.113.1",)
        assert harness.api.shown("b/l") == ("203.0.113.0",)
    finally:
        await harness.reconciler.stop()


async def test_a_pending_service_served_at_last_is_one_write_with_its_allocated_condition() -> None:
    """A Service that waited for its pool: the write that shows its IP also turns its Allocated condition True."""
    harness = Harness({"pools": [], "services": []})
    try:
        harness.api.put_service(svc("a", annotations={POOL_ANN: "late"}))
        await harness.settle()
        assert harness.api.condition("default/a", "ironlb.io/Allocated")["status"] == "False"
        before = len(harness.api.calls)
        harness.reconciler.pool_event(pool("late", "203.0.113.0/30"), deleted=False)
        await harness.settle()
        writes = [c for c in harness.api.calls[before:] if c.target == "default/a"]
        assert [(c.op, c.value[:2], c.result.value) for c in writes] == [
            ("service", ([{"ip": "203.0.113.0", "ipMode": "VIP"}], "late"), "written")]
        assert writes[0].value[2]["status"] == "True"
        assert harness.api.condition("default/a", "ironlb.io/Allocated")["status"] == "True"
    finally:
        await harness.reconciler.stop()


async def test_after_a_restore_a_new_service_is_not_queued_behind_the_rechecks() -> None:
    """The restore's once-over of Services that kept their IPs runs after what events queue: a Service
    created meanwhile is the first reconciled, and every restored one is still checked."""
    kept = [svc(f"k{i}", ingress=(f"2001:db8:ffff::{i + 1:x}",), pool="p", ipFamilies=["IPv6"]) for i in range(300)]
    harness = Harness({"pools": [pool("p", "2001:db8:ffff::/112")], "services": kept})
    try:
        rec = harness.reconciler
        await rec.stop()  # a leader whose restore is done, its workers not yet running
        assert len(rec._rechecks) == 300
        harness.api.put_service(svc("new", ipFamilies=["IPv6"]))
        await asyncio.sleep(0)  # the watch delivers it
        order: list[str] = []
        reconcile = rec._reconcile_service

        async def recorded(key: str) -> None:
            order.append(key)
            await reconcile(key)

        rec._reconcile_service = recorded  # type: ignore[method-assign]
        before = len(harness.api.calls)
        rec.start()
        await harness.settle()
        assert order[0] == "default/new" and set(order) == {"default/new", *(f"default/k{i}" for i in range(300))}
        writes = [c.target for c in harness.api.calls[before:] if c.op == "service"]
        assert writes == ["default/new"], writes  # the kept ones find nothing to write
        assert harness.api.shown("default/new") == ("2001:db8:ffff::",)
        assert not rec._rechecking and not rec._rechecks
    finally:
        await harness.reconciler.stop()
