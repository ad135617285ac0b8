"""The upstream cleanup finalizer (service.kubernetes.io/load-balancer-cleanup): added with the IP it guards, kept
while a speaker may still answer for the IP, removed once one says Withdrawn (or the wait runs out), and only
then is the IP released. Against the fake API, which deletes a Service with its last finalizer."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ironlb.api.constants import LB_CLEANUP_FINALIZER
from tests.unit.operator.test_reconciler_scenarios import IPS_ANN, Harness, pool, svc

IP = "203.0.113.0"
START = {"pools": [pool("p", "203.0.113.0/31")], "services": []}


def withdrawn_by_speaker(harness: Harness, key: str, reason: str = "Withdrawn") -> None:
    """What the speaker that announced KEY writes once it stopped answering (REASON: another word instead)."""
    body = copy.deepcopy(harness.api.services[key])
    said = {"type": "ironlb.io/Announced", "status": "False", "reason": reason}
    body.setdefault("status", {})["conditions"] = [
        c for c in body["status"].get("conditions") or [] if c["type"] != said["type"]] + [said]
    harness.api._store(key, body)


def retyped(key_body: dict[str, Any], type_: str) -> dict[str, Any]:
    """The Service changed to TYPE_, as the API server keeps it: status.loadBalancer cleared (strategy.go)."""
    body = copy.deepcopy(key_body)
    body["spec"]["type"] = type_
    body.setdefault("status", {})["loadBalancer"] = {}
    return body


async def assigned(harness: Harness, name: str = "a", **spec: Any) -> str:
    harness.api.put_service(svc(name, **spec))
    await harness.settle()
    assert harness.api.shown(f"default/{name}") == (IP,)
    return f"default/{name}"


async def test_the_finalizer_lands_in_the_write_that_shows_the_ip() -> None:
    harness = Harness(START)
    try:
        key = await assigned(harness)
        assert harness.api.finalizers(key) == [LB_CLEANUP_FINALIZER]
        assert [c.op for c in harness.api.calls] == ["service"]  # one write, as before
    finally:
        await harness.reconciler.stop()


async def test_a_deleted_service_goes_only_once_withdrawn_then_its_ip_is_free() -> None:
    harness = Harness(START)
    harness.api.speakers_withdraw = False
    try:
        key = await assigned(harness)
        harness.api.delete_service(key)
        await harness.settle()
        assert harness.api.finalizers(key) == [LB_CLEANUP_FINALIZER]  # still there: nobody said Withdrawn
        assert harness.reconciler.allocator.assignment(key) is not None  # the IP is not free meanwhile
        harness.api.put_service(svc("b", annotations={IPS_ANN: IP}))
        await harness.settle()
        assert harness.api.shown("default/b") == ()
        withdrawn_by_speaker(harness, key, reason="NoReadyEndpoints")  # not announced is not withdrawn
        await harness.settle()
        assert key in harness.api.services
        withdrawn_by_speaker(harness, key)
        await harness.settle()
        assert key not in harness.api.services  # its last finalizer went: the API server deleted it
        assert harness.reconciler.allocator.assignment(key) is None
        assert harness.api.shown("default/b") == (IP,)  # released, and reused
        assert harness.api.violations == []
    finally:
        await harness.reconciler.stop()


@pytest.mark.parametrize("type_", ["ClusterIP", "NodePort"])
async def test_a_service_changed_away_from_loadbalancer_loses_the_finalizer_once_withdrawn(type_: str) -> None:
    harness = Harness(START)
    harness.api.speakers_withdraw = False
    try:
        key = await assigned(harness)
        harness.api.put_service(retyped(harness.api.services[key], type_))
        await harness.settle()
        assert harness.api.finalizers(key) == [LB_CLEANUP_FINALIZER]
        withdrawn_by_speaker(harness, key)
        await harness.settle()
        assert harness.api.finalizers(key) == [] and harness.api.annotation(key) is None
        assert harness.reconciler.allocator.assignment(key) is None
        # Back to LoadBalancer (the e2e spec's third step): an IP and the finalizer again.
        back = copy.deepcopy(harness.api.services[key])
        back["spec"]["type"] = "LoadBalancer"
        harness.api.put_service(back)
        await harness.settle()
        assert harness.api.shown(key) == (IP,) and harness.api.finalizers(key) == [LB_CLEANUP_FINALIZER]
    finally:
        await harness.reconciler.stop()


async def test_a_service_showing_its_ip_without_the_finalizer_gets_it_on_the_next_reconcile() -> None:
    """An upgrade from an IronLB without it, or a takeover from MetalLB (which adds none): restored, then one write."""
    harness = Harness({"pools": [pool("p", "203.0.113.0/31")],
                       "services": [svc("old", ingress=(IP,), pool="p"), svc("metallb", ingress=("203.0.113.1",))]})
    try:
        await harness.settle()
        for key in ("default/old", "default/metallb"):
            assert harness.api.finalizers(key) == [LB_CLEANUP_FINALIZER], key
        assert harness.api.shown("default/old") == (IP,) and harness.api.shown("default/metallb") == ("203.0.113.1",)
        assert sorted((c.op, c.target) for c in harness.api.calls if c.target == "default/old") == [
            ("finalizer", "default/old")]
    finally:
        await harness.reconciler.stop()


async def test_without_a_speaker_the_finalizer_goes_after_the_timeout_with_a_warning() -> None:
    """No speaker runs (none can say Withdrawn): the Service is not kept for ever, and the Event says why."""
    harness = Harness(START, withdrawal_timeout=0.5)
    harness.api.speakers_withdraw = False
    try:
        key = await assigned(harness)
        harness.api.delete_service(key)
        await harness.settle(quiet=0.2)
        assert key in harness.api.services
        await harness.settle(quiet=1.0)
        assert key not in harness.api.services
        assert [e[1] for e in harness.api.events if e[0] == key] == ["WithdrawalUnconfirmed"]
        assert harness.reconciler.allocator.assignment(key) is None
    finally:
        await harness.reconciler.stop()


async def test_a_service_with_nothing_of_ours_written_loses_the_finalizer_at_once() -> None:
    """Deleted before any IP was shown (its pool full): nothing to withdraw, nothing to wait for."""
    harness = Harness(START, withdrawal_timeout=30)
    harness.api.speakers_withdraw = False
    try:
        body = svc("x", annotations={IPS_ANN: "198.51.100.1"})  # outside every pool: refused
        body["metadata"]["finalizers"] = [LB_CLEANUP_FINALIZER]
        harness.api.put_service(body)
        await harness.settle()
        harness.api.delete_service("default/x")
        await harness.settle()
        assert "default/x" not in harness.api.services
    finally:
        await harness.reconciler.stop()
