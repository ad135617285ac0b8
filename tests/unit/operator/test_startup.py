"""The operator's start-up: the Service informer's transform (what it keeps reads as the whole Service; slimming
twice is a no-op), and the start-up lists that wait out an API server not ready for them yet."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest

from ironlb.common.kubeapi import IP_ADDRESS_POOLS, NAMESPACES, ApiError, Client
from ironlb.operator import startup
from ironlb.operator.services import view_of
from ironlb.operator.startup import slim_service
from tests.unit.common.kubeapi.fake_server import FakeApiServer, Reply
from tests.unit.speaker.state.test_slim import full_service


def test_a_slim_service_reads_as_the_whole_one_and_keeps_what_relists_compare() -> None:
    full = full_service()
    thin = slim_service(copy.deepcopy(full))
    assert "managedFields" not in thin["metadata"]
    assert {k: thin["metadata"][k] for k in ("name", "namespace", "resourceVersion")} == {
        "name": "web", "namespace": "shop", "resourceVersion": "4711"}
    for labels in (None, {"team": "payments"}):
        assert view_of(thin, None, labels) == view_of(full, None, labels)
    assert slim_service(copy.deepcopy(thin)) == thin  # handed to the reconciler as the informer keeps it


def test_what_is_kept_does_not_grow_with_what_tenants_write() -> None:
    """A 200 KB annotation, managedFields and a ClusterIP Service's body are not kept; an oversized IronLB
    annotation is cut, and reads as the same clear error as the whole one."""
    full = full_service()
    full["metadata"]["annotations"]["example.com/blob"] = "x" * 200_000
    thin = slim_service(copy.deepcopy(full))
    assert len(json.dumps(thin)) < 2_000
    assert view_of(thin, None, None) == view_of(full, None, None)
    huge = copy.deepcopy(full)
    huge["metadata"]["annotations"]["ironlb.io/loadBalancerIPs"] = "203.0.113.1," * 20_000
    assert len(json.dumps(slim_service(copy.deepcopy(huge)))) < 4_000
    assert view_of(slim_service(copy.deepcopy(huge)), None, None) == view_of(huge, None, None)
    assert "longer than" in (view_of(huge, None, None).request_error or "")
    cluster_ip = copy.deepcopy(full)
    cluster_ip["spec"]["type"] = "ClusterIP"
    small = slim_service(copy.deepcopy(cluster_ip))
    assert "labels" not in small["metadata"] and set(small["spec"]) == {"type"}
    assert set(small["metadata"]["annotations"]) == {"ironlb.io/allocated-from-pool"}  # ours: to take it back
    assert view_of(small, None, None) == view_of(cluster_ip, None, None)


def test_the_start_up_lists_wait_out_a_crd_whose_storage_is_not_ready(api_server: FakeApiServer,
                                                                       api_client: Client) -> None:
    # helm creates the CRDs and the operator in one release: the first lists may meet a CRD without storage.
    answers = iter([Reply(429, {"kind": "Status", "code": 429, "message": "storage is (re)initializing"},
                          headers={"Retry-After": "1"}),
                    Reply(503, {"kind": "Status", "code": 503, "message": "unavailable"})])
    api_server.route("GET", IP_ADDRESS_POOLS.path(),
                     lambda _r: next(answers, Reply(200, {"items": [{"metadata": {"name": "default"}}]})))
    items = asyncio.run(startup.listed(api_client, IP_ADDRESS_POOLS, wait_s=5.0, pause_s=0.01))
    assert [i["metadata"]["name"] for i in items] == ["default"]
    assert len(api_server.requests) == 3


def test_the_start_up_lists_give_up_on_a_refusal_and_after_the_wait(api_server: FakeApiServer,
                                                                    api_client: Client) -> None:
    api_server.route("GET", IP_ADDRESS_POOLS.path(), Reply(403, {"kind": "Status", "code": 403, "message": "no"}))
    with pytest.raises(ApiError) as refused:
        asyncio.run(startup.listed(api_client, IP_ADDRESS_POOLS, wait_s=5.0, pause_s=0.01))
    assert refused.value.status == 403 and len(api_server.requests) == 1  # a refusal is not waited out
    api_server.route("GET", NAMESPACES.path(), Reply(429, {"kind": "Status", "code": 429, "message": "busy"}))
    with pytest.raises(ApiError) as throttled:
        asyncio.run(startup.listed(api_client, NAMESPACES, wait_s=0.2, pause_s=0.05))
    assert throttled.value.status == 429 and 2 <= len(api_server.requests) - 1 <= 5  # bounded by the wait
