"""Bad Service input against the lab's real API server: each case is refused by the API server with
its message, or gets an AllocationFailed Event that says what is wrong; the Service gets no IP, the
operator does not crash, and nothing changes for any other Service.

This is the Service half of the admission corpus (the IPAddressPool and L2Advertisement half is
test_crd_admission.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.testkit.invariants import DuplicateIPChecker
from e2e.testkit.testing import Kube, pool_manifest, wait_for
from tests.integration.conftest import events_for, ingress_ips, lb_service, wait_event, wait_ips

pytestmark = pytest.mark.lab
POOL = "svc-corpus"
ADDRESSES = "198.51.100.232-198.51.100.239"
P, IPS, SHARED = "ironlb.io/address-pool", "ironlb.io/loadBalancerIPs", "ironlb.io/allow-shared-ip"
LEGACY_IPS = "metallb.universe.tf/loadBalancerIPs"
TAKEN = "198.51.100.232"  # held by the witness w-0 (no sharing key)
SHARED_IP = "198.51.100.233"  # held by the witness w-1 (sharing key w1, TCP 80, policy Cluster)

# (case id, annotations, extra spec, substring of the AllocationFailed message)
EVENT_CASES: list[tuple[str, dict[str, str], dict[str, Any], str]] = [
    ("junk-ip", {P: POOL, IPS: "hello"}, {}, "requested IP 'hello' is not an IP address"),
    ("junk-ip-legacy-prefix", {P: POOL, LEGACY_IPS: "hello"}, {}, "requested IP 'hello' is not an IP address"),
    ("cidr-as-one-ip", {P: POOL, IPS: "2001:db8:ffff::/64"}, {"ipFamilies": ["IPv6"]},
     "requested IP '2001:db8:ffff::/64' is not an IP address"),
    ("v4-cidr-as-one-ip", {P: POOL, IPS: "198.51.100.232/29"}, {}, "is not an IP address"),
    ("two-of-one-family", {P: POOL, IPS: "198.51.100.233,198.51.100.234"}, {}, "two addresses of the same family"),
    ("both-families-single-stack", {P: POOL, IPS: "198.51.100.233,2001:db8:ffff::233"}, {},
     "is not of the Service's IP families"),
    ("dual-stack-without-v6", {P: POOL, IPS: "198.51.100.233"},
     {"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack"}, "needs a requested IPv6 address too"),
    ("outside-every-pool", {IPS: "192.0.2.201"}, {}, "requested 192.0.2.201 is not in any pool"),
    ("outside-the-named-pool", {P: POOL, IPS: "203.0.113.1"}, {}, f"is not in pool {POOL}"),
    ("ip-in-use", {P: POOL, IPS: TAKEN}, {}, f"requested {TAKEN} is already in use"),
    ("missing-pool", {P: "no-such-pool"}, {}, "pool 'no-such-pool' does not exist"),
    ("path-as-pool", {P: "../../etc/passwd"}, {}, "does not exist"),
    ("unicode-digits", {P: POOL, IPS: "\uff11\uff19\uff18.51.100.233"}, {}, "is not an IP address"),
    ("unicode-pool", {P: "pööl"}, {}, "pool 'pööl' does not exist"),
    ("oversized-value", {P: POOL, IPS: "9" * 100_000}, {}, "ironlb.io/loadBalancerIPs is longer than 1024 characters"),
    ("junk-spec-ip", {P: POOL}, {"loadBalancerIP": "not-an-ip"}, "requested IP 'not-an-ip' is not an IP address"),
    ("annotation-and-spec-differ", {P: POOL, IPS: "198.51.100.233"}, {"loadBalancerIP": "198.51.100.234"},
     "ask for different IPs"),
    ("sharing-without-key", {P: POOL, IPS: SHARED_IP}, {}, f"requested {SHARED_IP} is already in use"),
    ("sharing-same-port", {P: POOL, IPS: SHARED_IP, SHARED: "w1"}, {}, "shared and incompatible"),
    ("sharing-other-key", {P: POOL, IPS: SHARED_IP, SHARED: "other"}, {}, "shared and incompatible"),
    ("sharing-other-policy", {P: POOL, IPS: SHARED_IP, SHARED: "w1"},
     {"externalTrafficPolicy": "Local", "ports": [81]},
     "shared and incompatible"),
]

# (case id, manifest changes, substring of the API server's refusal)
REJECTED_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("annotation-too-large", {"annotations": {P: POOL, IPS: "1" * 300_000}}, "may not be more than 262144 bytes"),
    ("bad-annotation-key", {"annotations": {"ironlb.io/load balancer IPs": "x"}}, "metadata.annotations"),
    ("class-not-a-name", {"spec": {"loadBalancerClass": "no spaces/allowed here"}}, "loadBalancerClass"),
]


def witnesses(kube: Kube) -> dict[str, tuple[list[str], str | None]]:
    """The IPs and allocated-from-pool annotation of the witness Services."""
    out = {}
    for name in ("w-0", "w-1"):
        svc = kube.get("service", name)
        out[name] = ([i["ip"] for i in svc.get("status", {}).get("loadBalancer", {}).get("ingress") or []],
                     (svc["metadata"].get("annotations") or {}).get("ironlb.io/allocated-from-pool"))
    return out


@pytest.fixture(scope="module")
def corpus(kube: Kube) -> Any:
    """A pool and two witness Services that no case may disturb."""
    kube.apply(pool_manifest(POOL, [ADDRESSES], autoAssign=False))
    kube.apply(lb_service("w-0", annotations={P: POOL, IPS: TAKEN}),
               lb_service("w-1", annotations={P: POOL, IPS: SHARED_IP, SHARED: "w1"}))
    wait_ips(kube, "w-0")
    wait_ips(kube, "w-1")
    before = witnesses(kube)
    checker = DuplicateIPChecker().start()
    yield before
    checker.stop()
    assert checker.violations == [], checker.violations[:5]
    kube.kubectl("delete", "service", "w-0", "w-1", "--ignore-not-found", "--wait=false", check=False)
    kube.kubectl("delete", "ipaddresspool", POOL, "--ignore-not-found", "--wait=false", check=False)


def case_name(case_id: str) -> str:
    return f"bad-{case_id}"[:63]


@pytest.mark.parametrize(("case_id", "annotations", "spec", "message"), EVENT_CASES, ids=[c[0] for c in EVENT_CASES])
def test_bad_request_gets_a_clear_event_and_disturbs_nobody(kube: Kube, corpus: Any, cleanup, case_id: str,
                                                             annotations: dict[str, str], spec: dict[str, Any],
                                                             message: str) -> None:
    name = case_name(case_id)
    cleanup("service", name)
    kube.apply(lb_service(name, annotations=annotations, **spec))
    event = wait_event(kube, name, "AllocationFailed")
    assert message in event["message"], event["message"]
    assert event["type"] == "Warning" and len(event["message"]) <= 1024
    assert ingress_ips(kube, name) == []
    assert witnesses(kube) == corpus


@pytest.mark.parametrize(("case_id", "change", "message"), REJECTED_CASES, ids=[c[0] for c in REJECTED_CASES])
def test_invalid_service_is_refused_by_the_api_server(kube: Kube, corpus: Any, case_id: str, change: dict[str, Any],
                                                       message: str) -> None:
    body = lb_service(case_name(case_id), annotations=change.get("annotations"))
    body["spec"].update(change.get("spec", {}))
    res = kube.kubectl("create", "-f", "-", input=json.dumps(body), check=False)
    assert res.returncode != 0 and message in res.stderr, res.stderr
    assert witnesses(kube) == corpus


def test_class_change_is_refused_and_keeps_the_ip(kube: Kube, corpus: Any, cleanup) -> None:
    """loadBalancerClass is immutable on a LoadBalancer Service: the change is refused, the IP stays."""
    cleanup("service", "bad-class-change")
    kube.apply(lb_service("bad-class-change", annotations={P: POOL}))
    ips = wait_ips(kube, "bad-class-change")
    res = kube.kubectl("patch", "service", "bad-class-change", "-p",
                       json.dumps({"spec": {"loadBalancerClass": "example.com/other"}}), check=False)
    assert res.returncode != 0 and "loadBalancerClass" in res.stderr, res.stderr
    assert ingress_ips(kube, "bad-class-change") == ips
    assert witnesses(kube) == corpus


def test_type_change_releases_the_ip_and_nothing_else(kube: Kube, corpus: Any, cleanup) -> None:
    """LoadBalancer -> ClusterIP: the IP and our annotation go, with IPReleased; the witnesses stay."""
    cleanup("service", "bad-type-change")
    kube.apply(lb_service("bad-type-change", annotations={P: POOL}))
    wait_ips(kube, "bad-type-change")
    kube.kubectl("patch", "service", "bad-type-change", "-p",
                 json.dumps({"spec": {"type": "ClusterIP", "allocateLoadBalancerNodePorts": None}}))
    wait_event(kube, "bad-type-change", "IPReleased")
    svc = kube.get("service", "bad-type-change")
    wait_for(lambda: "ironlb.io/allocated-from-pool" not in (kube.get("service", "bad-type-change")["metadata"]
                                                             .get("annotations") or {}), what="annotation removed")
    assert not (svc.get("status", {}).get("loadBalancer") or {}).get("ingress")
    assert witnesses(kube) == corpus


def test_a_repeated_failure_is_one_event_with_a_count(kube: Kube, corpus: Any, cleanup) -> None:
    """The same refusal, retried whenever capacity changes, is one Event object, not a stream."""
    cleanup("service", "bad-repeat")
    kube.apply(lb_service("bad-repeat", annotations={P: "no-such-pool"}))
    wait_event(kube, "bad-repeat", "AllocationFailed")
    for i in range(5):  # other changes retry every pending Service
        kube.apply(lb_service("bad-repeat", annotations={P: "no-such-pool", "touch": str(i)}))
    raw = json.loads(kube.kubectl("get", "events", "-o", "json", "--field-selector",
                                  "involvedObject.name=bad-repeat,reason=AllocationFailed").stdout)["items"]
    assert len(raw) == 1, [e["message"] for e in raw]
    assert len(events_for(kube, "bad-repeat")) <= 2
