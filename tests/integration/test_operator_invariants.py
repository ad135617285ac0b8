"""What users trust, against the lab's real API server, with an independent checker watching every
version of every Service: an IP is never shown by two Services, and a pool's serviceAllocation is a
boundary that no annotation or requested IP crosses."""

from __future__ import annotations

import pytest

from e2e.testkit.invariants import DuplicateIPChecker
from e2e.testkit.testing import Kube, pool_manifest, wait_for
from tests.integration.conftest import events_for, ingress_ips, lb_service, wait_event, wait_ips

pytestmark = pytest.mark.lab
POOL_ANN, IPS_ANN, FROM_POOL = "ironlb.io/address-pool", "ironlb.io/loadBalancerIPs", "ironlb.io/allocated-from-pool"
LONE_IP = "198.51.100.224"


def annotation(kube: Kube, name: str, namespace: str = "default") -> str | None:
    return (kube.get("service", name, namespace)["metadata"].get("annotations") or {}).get(FROM_POOL)


def test_deleting_a_pool_never_leaves_two_services_on_one_ip(kube: Kube, cleanup) -> None:
    """Pool a holds one IP and Service one has it. Delete a: one loses the IP from status and annotation.
    A new pool b with the same address then serves a new Service two; one and two never both show it."""
    for kind, name in (("ipaddresspool", "inv-a"), ("ipaddresspool", "inv-b"), ("service", "inv-one"),
                       ("service", "inv-two")):
        cleanup(kind, name, None if kind == "ipaddresspool" else "default")
    with DuplicateIPChecker() as checker:
        kube.apply(pool_manifest("inv-a", [LONE_IP], autoAssign=False))
        kube.apply(lb_service("inv-one", annotations={POOL_ANN: "inv-a"}))
        assert wait_ips(kube, "inv-one") == [LONE_IP]
        kube.kubectl("delete", "ipaddresspool", "inv-a")
        wait_for(lambda: ingress_ips(kube, "inv-one") == [] and annotation(kube, "inv-one") is None,
                 what="inv-one to lose the IP of its deleted pool")
        failed = wait_event(kube, "inv-one", "AllocationFailed")
        assert "inv-a" in failed["message"] and "does not exist" in failed["message"]
        kube.apply(pool_manifest("inv-b", [LONE_IP], autoAssign=False))
        kube.apply(lb_service("inv-two", annotations={POOL_ANN: "inv-b"}))
        assert wait_ips(kube, "inv-two") == [LONE_IP]
        assert ingress_ips(kube, "inv-one") == []
    assert checker.violations == [], checker.violations[:5]
    assert checker.events > 0


def test_a_pool_annotation_or_requested_ip_does_not_cross_a_namespace_restriction(kube: Kube, cleanup) -> None:
    """A pool kept for namespace team: a Service in evil that names the pool, requests its IP (annotation
    or spec.loadBalancerIP) gets nothing and an Event naming the rule; a Service in team gets it."""
    for ns in ("inv-team", "inv-evil"):
        kube.kubectl("create", "namespace", ns, check=False)
        cleanup("namespace", ns, None)
    cleanup("ipaddresspool", "inv-team", None)
    kube.apply(pool_manifest("inv-team", ["198.51.100.225"], autoAssign=False,
                             serviceAllocation={"namespaces": ["inv-team"]}))
    with DuplicateIPChecker() as checker:
        attempts = {"by-pool": {POOL_ANN: "inv-team"}, "by-ip": {IPS_ANN: "198.51.100.225"}}
        for name, ann in attempts.items():
            kube.apply(lb_service(name, namespace="inv-evil", annotations=ann))
        kube.apply(lb_service("by-spec", namespace="inv-evil", loadBalancerIP="198.51.100.225"))
        for name in (*attempts, "by-spec"):
            event = wait_event(kube, name, "AllocationFailed", namespace="inv-evil")
            assert "serves only namespaces inv-team (serviceAllocation.namespaces), not inv-evil" in event["message"]
        kube.apply(lb_service("ok", namespace="inv-team", annotations={POOL_ANN: "inv-team"}))
        assert wait_ips(kube, "ok", namespace="inv-team") == ["198.51.100.225"]
        for name in (*attempts, "by-spec"):
            assert ingress_ips(kube, name, namespace="inv-evil") == []
            assert not [e for e in events_for(kube, name, "inv-evil") if e["reason"] == "IPAllocated"]
    assert checker.violations == []
