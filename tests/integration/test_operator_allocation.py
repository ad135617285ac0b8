"""The operator against the lab's real API server: assignment, requests, sharing, classes, pools."""

from __future__ import annotations

import json

import pytest

from e2e.testkit.testing import Kube, wait_for
from e2e.testkit.testing import pool_manifest as pool
from ironlb.api.constants import LB_CLEANUP_FINALIZER
from tests.integration.conftest import events_for, ingress_ips, lb_service, wait_event, wait_ips

pytestmark = pytest.mark.lab
POOL_ANN = "ironlb.io/address-pool"


def test_assigns_lowest_address_and_reports_it(kube: Kube, cleanup) -> None:
    cleanup("ipaddresspool", "t-basic", None)
    kube.apply(pool("t-basic", ["203.0.113.200-203.0.113.203"], autoAssign=False))
    cleanup("service", "basic")
    kube.apply(lb_service("basic", annotations={POOL_ANN: "t-basic"}))
    assert wait_ips(kube, "basic") == ["203.0.113.200"]
    svc = kube.get("service", "basic")
    assert svc["metadata"]["annotations"]["ironlb.io/allocated-from-pool"] == "t-basic"
    assert svc["status"]["loadBalancer"]["ingress"][0]["ipMode"] == "VIP"
    # Nothing else is written on a user's Service: only the upstream cleanup finalizer, no framework annotations.
    assert svc["metadata"].get("finalizers") == [LB_CLEANUP_FINALIZER]
    assert not [k for k in svc["metadata"]["annotations"] if "kopf" in k]
    assert "203.0.113.200" in kube.kubectl("get", "svc", "basic").stdout
    # A first assignment is one write: its status; no IPAllocated Event (the default --allocation-events moves).
    assert not [e for e in events_for(kube, "basic") if e["reason"] == "IPAllocated"]


def test_requested_ip_and_metallb_annotations(kube: Kube, cleanup) -> None:
    cleanup("ipaddresspool", "t-req", None)
    kube.apply(pool("t-req", ["203.0.113.208/29"], autoAssign=False))
    cleanup("service", "req-ironlb")
    cleanup("service", "req-metallb")
    cleanup("service", "req-legacy")
    kube.apply(lb_service("req-ironlb", annotations={"ironlb.io/loadBalancerIPs": "203.0.113.213"}))
    kube.apply(lb_service("req-metallb", annotations={"metallb.io/loadBalancerIPs": "203.0.113.214"}))
    kube.apply(lb_service("req-legacy", annotations={"metallb.universe.tf/loadBalancerIPs": "203.0.113.215"}))
    assert wait_ips(kube, "req-ironlb") == ["203.0.113.213"]
    assert wait_ips(kube, "req-metallb") == ["203.0.113.214"]
    assert wait_ips(kube, "req-legacy") == ["203.0.113.215"]
    warning = wait_event(kube, "req-legacy", "DeprecatedConfiguration")
    assert "metallb.universe.tf/loadBalancerIPs" in warning["message"] and warning["type"] == "Warning"


def test_requested_ip_in_use_fails_with_reason(kube: Kube, cleanup) -> None:
    cleanup("ipaddresspool", "t-inuse", None)
    kube.apply(pool("t-inuse", ["203.0.113.220/30"], autoAssign=False))
    cleanup("service", "inuse-a")
    cleanup("service", "inuse-b")
    kube.apply(lb_service("inuse-a", annotations={"ironlb.io/loadBalancerIPs": "203.0.113.221"}))
    assert wait_ips(kube, "inuse-a") == ["203.0.113.221"]
    kube.apply(lb_service("inuse-b", annotations={"ironlb.io/loadBalancerIPs": "203.0.113.221"}))
    failed = wait_event(kube, "inuse-b", "AllocationFailed")
    assert "203.0.113.221" in failed["message"] and failed["type"] == "Warning"
    assert ingress_ips(kube, "inuse-b") == []
    # Capacity appears (the holder goes away): the pending Service is retried without polling.
    kube.kubectl("delete", "service", "inuse-a")
    assert wait_ips(kube, "inuse-b") == ["203.0.113.221"]


def test_sharing_same_key_and_port_collision(kube: Kube, cleanup) -> None:
    cleanup("ipaddresspool", "t-share", None)
    kube.apply(pool("t-share", ["203.0.113.230/31"], autoAssign=False))
    share = {POOL_ANN: "t-share", "ironlb.io/allow-shared-ip": "k1"}
    for name, port in (("share-a", 80), ("share-b", 443), ("share-c", 80)):
        cleanup("service", name)
        kube.apply(lb_service(name, annotations=share, ports=[port]))
    ip_a = wait_ips(kube, "share-a")
    assert wait_ips(kube, "share-b") == ip_a
    # share-c collides on port 80 with share-a: it gets the other address, never the same one.
    ip_c = wait_ips(kube, "share-c")
    assert ip_c != ip_a


def test_other_load_balancer_class_is_left_alone(kube: Kube, cleanup) -> None:
    cleanup("service", "other-class")
    kube.apply(lb_service("other-class", loadBalancerClass="example.com/other"))
    import time
    time.sleep(2)
    svc = kube.get("service", "other-class")
    assert not svc.get("status", {}).get("loadBalancer", {}).get("ingress")
    assert "ironlb.io/allocated-from-pool" not in (svc["metadata"].get("annotations") or {})
    assert events_for(kube, "other-class") == []


def test_type_change_releases_ip(kube: Kube, cleanup) -> None:
    cleanup("ipaddresspool", "t-type", None)
    kube.apply(pool("t-type", ["203.0.113.240/32"], autoAssign=False))
    cleanup("service", "type-a")
    cleanup("service", "type-b")
    kube.apply(lb_service("type-a", annotations={POOL_ANN: "t-type"}))
    assert wait_ips(kube, "type-a") == ["203.0.113.240"]
    kube.apply(lb_service("type-b", annotations={POOL_ANN: "t-type"}))
    wait_event(kube, "type-b", "AllocationFailed")
    patch = json.dumps({"spec": {"type": "ClusterIP", "allocateLoadBalancerNodePorts": None,
                                 "externalTrafficPolicy": None}})
    kube.kubectl("patch", "service", "type-a", "--type=merge", "-p", patch)
    assert wait_ips(kube, "type-b") == ["203.0.113.240"]
    svc = wait_for(lambda: (s := kube.get("service", "type-a")) and
                   "ironlb.io/allocated-from-pool" not in (s["metadata"].get("annotations") or {}) and s,
                   what="annotation removed")
    assert not svc.get("status", {}).get("loadBalancer", {}).get("ingress")


def test_pool_shrink_reallocates(kube: Kube, cleanup) -> None:
    cleanup("ipaddresspool", "t-shrink", None)
    kube.apply(pool("t-shrink", ["203.0.113.244-203.0.113.247"], autoAssign=False))
    names = ["shrink-0", "shrink-1"]
    for name in names:
        cleanup("service", name)
        kube.apply(lb_service(name, annotations={POOL_ANN: "t-shrink"}))
    first = {n: wait_ips(kube, n)[0] for n in names}
    assert sorted(first.values()) == ["203.0.113.244", "203.0.113.245"]
    kube.apply(pool("t-shrink", ["203.0.113.245-203.0.113.247"], autoAssign=False))
    moved = next(n for n, ip in first.items() if ip == "203.0.113.244")
    kept = next(n for n in names if n != moved)
    assert wait_for(lambda: (ips := ingress_ips(kube, moved)) and ips != ["203.0.113.244"] and ips,
                    what="re-allocation") == ["203.0.113.246"]
    assert ingress_ips(kube, kept) == [first[kept]]


def test_pool_status_counts(kube: Kube, cleanup) -> None:
    cleanup("ipaddresspool", "t-status", None)
    kube.apply(pool("t-status", ["198.51.100.0/28", "2001:db8:ffff:1::/120"], autoAssign=False))
    cleanup("service", "status-a")
    kube.apply(lb_service("status-a", annotations={POOL_ANN: "t-status"}))
    wait_ips(kube, "status-a")

    def counted() -> dict | None:
        status = kube.get("ipaddresspool", "t-status", None).get("status") or {}
        return status if status.get("assignedIPv4") == 1 else None

    status = wait_for(counted, what="pool status")
    assert status["availableIPv4"] == 15
    assert str(status["availableIPv6"]) == "256"
    columns = kube.kubectl("get", "ipaddresspool", "t-status").stdout
    assert "198.51.100.0/28" in columns


def test_overlapping_pools_reported(kube: Kube, cleanup) -> None:
    cleanup("ipaddresspool", "t-over-a", None)
    cleanup("ipaddresspool", "t-over-b", None)
    kube.apply(pool("t-over-a", ["198.51.100.64/28"], autoAssign=False))
    kube.apply(pool("t-over-b", ["198.51.100.72-198.51.100.90"], autoAssign=False))

    def overlapping(name: str) -> dict | None:
        conds = (kube.get("ipaddresspool", name, None).get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "Overlapping" and c["status"] == "True"), None)

    cond = wait_for(lambda: overlapping("t-over-b"), what="Overlapping condition")
    assert "t-over-a" in cond["message"]
    wait_event(kube, "t-over-b", "Overlapping", kind="IPAddressPool")
