"""The leader Lease with a fake clock and a fake coordination API: one writer, strictly."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from ironlb.operator.lease import LeaderLease, LeaseConfig, LeaseDecision
from tests.unit.fakeclock import FakeClock


class FakeLeases:
    """One Lease object with compare-and-swap on resourceVersion; can be made to fail or hang."""

    def __init__(self) -> None:
        self.lease: client.V1Lease | None = None
        self.rv = 0
        self.down = False
        self.timeouts: list[Any] = []

    def _guard(self, kwargs: dict[str, Any]) -> None:
        self.timeouts.append(kwargs.get("_request_timeout"))
        if self.down:
            raise OSError("connection timed out")

    def read_namespaced_lease(self, name: str, namespace: str, **kwargs: Any) -> client.V1Lease:
        self._guard(kwargs)
        if self.lease is None:
            raise ApiException(status=404)
        return copy.deepcopy(self.lease)

    def create_namespaced_lease(self, namespace: str, body: client.V1Lease, **kwargs: Any) -> None:
        self._guard(kwargs)
        if self.lease is not None:
            raise ApiException(status=409)
        self._store(body)

    def replace_namespaced_lease(self, name: str, namespace: str, body: client.V1Lease, **kwargs: Any) -> None:
        self._guard(kwargs)
        assert self.lease is not None
        if body.metadata.resource_version != self.lease.metadata.resource_version:
            raise ApiException(status=409)
        self._store(body)

    def _store(self, body: client.V1Lease) -> None:
        self.rv += 1
        body = copy.deepcopy(body)
        body.metadata.resource_version = str(self.rv)
        self.lease = body


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
    api.lease.spec.renew_time = api.lease.spec.renew_time.replace(year=2001)
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
    real_read = api.read_namespaced_lease
    api.read_namespaced_lease = lambda *a, **kw: copy.deepcopy(stale)  # type: ignore[method-assign]
    assert standby.try_once() is LeaseDecision.CONFLICT
    assert not standby.may_write()
    api.read_namespaced_lease = real_read  # type: ignore[method-assign]
    assert standby.try_once() is LeaseDecision.HELD_BY_OTHER


def test_release_hands_over_at_once_and_stops_writes() -> None:
    api, clock = FakeLeases(), FakeClock()
    leader, standby = make(api, "leader", clock), make(api, "standby", clock)
    leader.try_once()
    leader.release()
    assert not leader.may_write()
    assert standby.try_once() is LeaseDecision.ACQUIRED
