"""The leader Lease with a fake clock and a fake API client holding one Lease: one writer, strictly."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from ironlb.common.kubeapi import LEASES, ApiError, Resource
from ironlb.operator.lease import LeaderLease, LeaseConfig, LeaseDecision
from tests.unit.fakeclock import FakeClock


class FakeLeases:
    """The client's get/create/replace on one Lease, with compare-and-swap on resourceVersion; can be made to fail."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.rv = 0
        self.down = False
        self.timeouts: list[Any] = []

    def _guard(self, resource: Resource, namespace: str | None, timeout: Any) -> None:
        assert resource is LEASES and namespace == "ns"
        self.timeouts.append(timeout)
        if self.down:
            raise OSError("connection timed out")

    def get(self, resource: Resource, name: str, namespace: str | None = None, *,
            timeout: Any = None) -> dict[str, Any]:
        self._guard(resource, namespace, timeout)
        if self.lease is None:
            raise ApiError(404, "Not Found")
        return copy.deepcopy(self.lease)

    def create(self, resource: Resource, body: dict[str, Any], namespace: str | None = None, *,
               timeout: Any = None) -> dict[str, Any]:
        self._guard(resource, namespace, timeout)
        if self.lease is not None:
            raise ApiError(409, "Conflict")
        return self._store(body)

    def replace(self, resource: Resource, name: str, body: dict[str, Any], namespace: str | None = None, *,
                timeout: Any = None) -> dict[str, Any]:
        self._guard(resource, namespace, timeout)
        assert self.lease is not None
        if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict")
        return self._store(body)

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.rv)
        self.lease = {k: v for k, v in body.items() if v is not None}
        return copy.deepcopy(self.lease)


CONFIG = LeaseConfig(namespace="ns", duration_s=15, renew_deadline_s=10, retry_s=2, request_timeout_s=5)


def make(api: FakeLeases, identity: str, clock: FakeClock) -> LeaderLease:
    return LeaderLease(api, CONFIG, identity, clock=clock)  # type: ignore[arg-type]


def test_timings_must_nest() -> None:
    with pytest.raises(ValueError, match="retry < renew deadline < duration"):
        LeaseConfig(namespace="ns", duration_s=10, renew_deadline_s=10)
    cfg = LeaseConfig.for_duration("ns", "x", 6)
    assert cfg.retry_s < cfg.renew_deadline_s < cfg.duration_s


def test_every_call_has_a_request_timeout() -> None:
    api, clock = FakeLeases(), FakeClock()
    lease = make(api, "a", clock)
    lease.try_once()
    lease.try_once()
    lease.release()
    assert api.timeouts and all(t == 5 for t in api.timeouts)


def test_writes_stop_at_the_renew_deadline_before_a_standby_can_start() -> None:
    api, clock = FakeLeases(), FakeClock()
    leader, standby = make(api, "leader", clock), make(api, "standby", clock)
    assert leader.try_once() is LeaseDecision.ACQUIRED and leader.may_write()
    assert standby.try_once() is LeaseDecision.HELD_BY_OTHER
    api.down = True  # the leader cannot renew from here on
    clock.now += 9.9
    assert leader.try_once() is LeaseDecision.API_ERROR
    assert leader.may_write()  # still inside the renew deadline
    clock.now += 0.2
    assert not leader.may_write()  # past it: no write is issued any more
    api.down = False
    clock.now += 4.5  # 14.6 s after the last renewal: the Lease has not expired yet
    assert standby.try_once() is LeaseDecision.HELD_BY_OTHER
    clock.now += 0.6
    assert standby.try_once() is LeaseDecision.ACQUIRED
    assert standby.may_write() and not leader.may_write()
    assert leader.try_once() is LeaseDecision.HELD_BY_OTHER


def test_standby_judges_expiry_by_its_own_clock_not_the_holders() -> None:
    """A renewTime far in the past (the holder's clock is behind) does not let a standby in."""
    api, clock = FakeLeases(), FakeClock()
    leader, standby = make(api, "leader", clock), make(api, "standby", clock)
    leader.try_once()
    assert api.lease is not None
    api.lease["spec"]["renewTime"] = "2001" + api.lease["spec"]["renewTime"][4:]
    assert standby.try_once() is LeaseDecision.HELD_BY_OTHER
    clock.now += 10
    leader.try_once()  # the leader keeps renewing: the record changes, the standby keeps waiting
    clock.now += 10
    assert standby.try_once() is LeaseDecision.HELD_BY_OTHER


def test_a_takeover_on_an_old_read_loses_the_compare_and_swap() -> None:
    """A standby that read the Lease before the leader's last renewal cannot replace it."""
    api, clock = FakeLeases(), FakeClock()
    leader, standby = make(api, "leader", clock), make(api, "standby", clock)
    leader.try_once()
    standby.try_once()  # first sight of the record
    stale = copy.deepcopy(api.lease)
    clock.now += 16  # the standby thinks the record has been still for a whole duration
    leader.try_once()  # ... but the leader renewed meanwhile
    real_read = api.get
    api.get = lambda *a, **kw: copy.deepcopy(stale)  # type: ignore[method-assign,assignment]
    assert standby.try_once() is LeaseDecision.CONFLICT
    assert not standby.may_write()
    api.get = real_read  # type: ignore[method-assign]
    assert standby.try_once() is LeaseDecision.HELD_BY_OTHER


def test_release_hands_over_at_once_and_stops_writes() -> None:
    api, clock = FakeLeases(), FakeClock()
    leader, standby = make(api, "leader", clock), make(api, "standby", clock)
    leader.try_once()
    leader.release()
    assert not leader.may_write()
    assert api.lease is not None and "holderIdentity" not in api.lease["spec"]
    assert standby.try_once() is LeaseDecision.ACQUIRED


def test_a_created_lease_is_owned_and_its_times_are_microtimes() -> None:
    """What the API server validates: MicroTime with microseconds in UTC, ownerReferences when an owner is known."""
    owner = ({"apiVersion": "apps/v1", "kind": "Deployment", "name": "op", "uid": "u1"},)
    api = FakeLeases()
    lease = LeaderLease(api, CONFIG, "a", clock=FakeClock(), owner=owner)  # type: ignore[arg-type]
    assert lease.try_once() is LeaseDecision.ACQUIRED
    assert api.lease is not None
    assert api.lease["metadata"]["ownerReferences"] == list(owner)
    spec = api.lease["spec"]
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", spec["renewTime"])
    acquired = spec["acquireTime"]
    assert lease.try_once() is LeaseDecision.RENEWED
    assert api.lease["spec"]["acquireTime"] == acquired  # renewing keeps the time it was acquired
