"""The operator's Service informer transform: what it keeps reads as the whole Service; slimming twice is a no-op."""

from __future__ import annotations

import copy
import json

from ironlb.operator.services import view_of
from ironlb.operator.startup import slim_service
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
