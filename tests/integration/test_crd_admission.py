"""IronLB's CRDs against a real kube-apiserver: bad objects are refused at admission with a
message a person understands, good ones are accepted (with defaults applied).

Each bad manifest is applied with `kubectl apply -f -` and must fail with a message that
contains the substring given for the case. Checks the API server cannot make (see the docstring of
ironlb.api.crds) are in RUNTIME_ONLY: those objects are *accepted* here, and the operator reports
them in status conditions. Good and runtime-only manifests go through `--dry-run=server` (all of
admission, nothing stored), so an operator running in the lab never allocates from them; the few
objects really created carry the label ironlb.io/test=crd-admission and are deleted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ironlb.api import constants

pytestmark = pytest.mark.lab

CRD_DIR = Path(__file__).resolve().parents[2] / "charts" / "ironlb" / "crds"
TEST_LABEL = "ironlb.io/test"
TEST_LABEL_VALUE = "crd-admission"

POOL = constants.IPADDRESSPOOL_KIND
L2 = constants.L2ADVERTISEMENT_KIND
RESOURCE = {POOL: constants.IPADDRESSPOOL_CRD_NAME, L2: constants.L2ADVERTISEMENT_CRD_NAME}


def manifest(kind: str, name: str, spec: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": constants.API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "labels": {TEST_LABEL: TEST_LABEL_VALUE}},
    }
    if spec is not None:
        obj["spec"] = spec
    return obj


def object_name(case_id: str) -> str:
    return ("adm-" + re.sub(r"[^a-z0-9]+", "-", case_id.lower())).strip("-")[:63].rstrip("-")


def pool(*addresses: str, **extra: Any) -> dict[str, Any]:
    return {"addresses": list(addresses), **extra}


def sel(*expressions: dict[str, Any], **labels: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if labels:
        out["matchLabels"] = labels
    if expressions:
        out["matchExpressions"] = list(expressions)
    return out


def expr(key: str, operator: str, values: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": operator}
    if values is not None:
        out["values"] = values
    return out


# (id, kind, spec, substring the API server's answer must contain)
REJECTED: list[tuple[str, str, dict[str, Any] | None, str]] = [
    # --- IPAddressPool: shape
    ("pool-no-spec", POOL, None, "spec: Required value"),
    ("pool-no-addresses", POOL, {"autoAssign": True}, "spec.addresses: Required value"),
    ("pool-empty-addresses", POOL, pool(), "should have at least 1 items"),
    ("pool-too-many-addresses", POOL, pool(*(f"203.0.113.{i}" for i in range(65))), "at most 64 items"),
    ("pool-duplicate-address", POOL, pool("203.0.113.0/24", "203.0.113.0/24"), "Duplicate value"),
    ("pool-entry-too-long", POOL, pool("2001:db8::" + "1" * 95), "Too long"),
    ("pool-typo-field", POOL, {"adresses": ["203.0.113.0/24"], "addresses": ["203.0.113.0/24"]},
     'unknown field "spec.adresses"'),
    # --- IPAddressPool: address syntax
    ("addr-empty-string", POOL, pool(""), "an address entry must not be empty"),
    ("addr-not-an-address", POOL, pool("my-pool"), "'my-pool' is not a valid range: 'my' is not an IPv4"),
    ("addr-garbage", POOL, pool("hello"), "'hello' is not a valid IP address, CIDR or range"),
    ("addr-octet-out-of-range", POOL, pool("203.0.113.256"), "'203.0.113.256' is not a valid IP address"),
    ("addr-leading-zero", POOL, pool("203.0.113.07"), "'203.0.113.07' is not a valid IP address"),
    ("addr-ipv4-mapped-ipv6", POOL, pool("::ffff:203.0.113.1"), "'::ffff:203.0.113.1' is not a valid IP"),
    ("addr-spaces", POOL, pool("203.0.113.10 - 203.0.113.20"), "must not contain spaces"),
    ("cidr-bad-address", POOL, pool("203.0.113/24"), "'203.0.113' is not an IPv4 or IPv6 address"),
    ("cidr-mask-too-long-v4", POOL, pool("203.0.113.0/33"), "from 0 to 32 for IPv4"),
    ("cidr-mask-too-long-v6", POOL, pool("2001:db8::/129"), "from 0 to 128 for IPv6"),
    ("cidr-mask-not-a-number", POOL, pool("203.0.113.0/x"), "'203.0.113.0/x' has an invalid prefix length"),
    ("cidr-host-bits-v4", POOL, pool("203.0.113.5/24"), "'203.0.113.5/24' has host bits set"),
    ("cidr-host-bits-v6", POOL, pool("2001:db8::1/64"), "'2001:db8::1/64' has host bits set"),
    ("range-bad-end", POOL, pool("203.0.113.1-203.0.113.300"), "'203.0.113.300' is not an IPv4 or IPv6"),
    ("range-missing-end", POOL, pool("203.0.113.1-"), "'' is not an IPv4 or IPv6 address"),
    ("range-two-dashes", POOL, pool("203.0.113.1-203.0.113.5-203.0.113.9"), "exactly one '-'"),
    ("range-mixed-family", POOL, pool("203.0.113.1-2001:db8::1"), "mixes IPv4 and IPv6"),
    ("range-reversed-v4", POOL, pool("203.0.113.20-203.0.113.10"),
     "is reversed: its first address is greater than its last; did you mean '203.0.113.10-203.0.113.20'"),
    ("range-reversed-v4-across-octets", POOL, pool("203.0.113.0-198.51.100.255"), "is reversed"),
    ("range-reversed-v4-by-one", POOL, pool("198.51.100.128-198.51.100.127"), "is reversed"),
    ("range-reversed-v6", POOL, pool("2001:db8::ff-2001:db8::10"),
     "did you mean '2001:db8::10-2001:db8::ff'"),
    ("range-reversed-v6-high-bits", POOL, pool("2001:db9::-2001:db8:ffff::"), "is reversed"),
    ("range-reversed-v6-last-bit", POOL, pool("2001:db8::1-2001:db8::"), "is reversed"),
    ("addr-loopback", POOL, pool("127.0.0.0/8"), "cannot hold LoadBalancer IPs"),
    ("addr-default-route", POOL, pool("0.0.0.0/0"), "cannot hold LoadBalancer IPs"),
    ("addr-multicast-v6", POOL, pool("ff02::1"), "cannot hold LoadBalancer IPs"),
    ("addr-link-local-range", POOL, pool("169.254.0.1-169.254.0.9"), "cannot hold LoadBalancer IPs"),
    ("addr-broadcast", POOL, pool("255.255.255.255"), "cannot hold LoadBalancer IPs"),
    # --- IPAddressPool: other fields
    ("pool-auto-assign-not-bool", POOL, pool("203.0.113.0/24", autoAssign="yes"), "must be of type boolean"),
    ("pool-unknown-forwarding", POOL, pool("203.0.113.0/24", forwarding="Direct"),
     'Unsupported value: "Direct"'),
    ("pool-negative-priority", POOL, pool("203.0.113.0/24", serviceAllocation={"priority": -1}),
     "should be greater than or equal to 0"),
    ("pool-bad-namespace", POOL, pool("203.0.113.0/24", serviceAllocation={"namespaces": ["Team_A"]}),
     "'Team_A' is not a valid namespace name"),
    ("pool-namespace-too-long", POOL, pool("203.0.113.0/24", serviceAllocation={"namespaces": ["n" * 64]}),
     "Too long"),
    ("pool-duplicate-namespace", POOL,
     pool("203.0.113.0/24", serviceAllocation={"namespaces": ["web", "web"]}), "Duplicate value"),
    ("selector-bad-operator", POOL,
     pool("203.0.113.0/24", serviceAllocation={"serviceSelectors": [sel(expr("app", "Equals", ["web"]))]}),
     'Unsupported value: "Equals"'),
    ("selector-in-without-values", POOL,
     pool("203.0.113.0/24", serviceAllocation={"serviceSelectors": [sel(expr("app", "In"))]}),
     "operator In needs at least one value in 'values' (key 'app')"),
    ("selector-notin-empty-values", POOL,
     pool("203.0.113.0/24", serviceAllocation={"namespaceSelectors": [sel(expr("team", "NotIn", []))]}),
     "operator NotIn needs at least one value"),
    ("selector-exists-with-values", POOL,
     pool("203.0.113.0/24", serviceAllocation={"serviceSelectors": [sel(expr("app", "Exists", ["web"]))]}),
     "operator Exists must not have 'values'"),
    ("selector-missing-operator", POOL,
     pool("203.0.113.0/24", serviceAllocation={"serviceSelectors": [sel({"key": "app"})]}),
     "operator: Required value"),
    ("selector-bad-key", POOL,
     pool("203.0.113.0/24", serviceAllocation={"serviceSelectors": [sel(expr("-app", "Exists"))]}),
     "'-app' is not a valid label key"),
    ("selector-bad-value", POOL,
     pool("203.0.113.0/24", serviceAllocation={"serviceSelectors": [sel(expr("app", "In", ["a b"]))]}),
     "'a b' is not a valid label value"),
    ("selector-bad-match-label-value", POOL,
     pool("203.0.113.0/24", serviceAllocation={"namespaceSelectors": [sel(team="blue!")]}),
     "'blue!' is not a valid label value"),
    ("selector-bad-match-label-key", POOL,
     pool("203.0.113.0/24", serviceAllocation={"serviceSelectors": [sel(**{"bad key!": "x"})]}),
     "a key in matchLabels is not a valid label key"),
    ("l2-node-selector-bad-match-label-key", L2, {"nodeSelectors": [sel(**{"example.com/": "x"})]},
     "a key in matchLabels is not a valid label key"),
    ("selector-too-many", POOL,
     pool("203.0.113.0/24", serviceAllocation={"serviceSelectors": [sel(app=f"a{i}") for i in range(9)]}),
     "at most 8 items"),
    # --- L2Advertisement
    ("l2-interface-slash", L2, {"interfaces": ["eth0/1"]}, "'eth0/1' is not a valid network interface name"),
    ("l2-interface-space", L2, {"interfaces": ["eth 0"]}, "'eth 0' is not a valid network interface name"),
    ("l2-interface-colon", L2, {"interfaces": ["eth0:1"]}, "'eth0:1' is not a valid network interface name"),
    ("l2-interface-dot", L2, {"interfaces": ["."]}, "'.' is not a valid network interface name"),
    ("l2-interface-too-long", L2, {"interfaces": ["enp0s31f6-uplink0"]}, "Too long"),
    ("l2-interface-empty", L2, {"interfaces": [""]}, "should be at least 1 chars long"),
    ("l2-duplicate-interface", L2, {"interfaces": ["eth0", "eth0"]}, "Duplicate value"),
    ("l2-bad-pool-name", L2, {"ipAddressPools": ["Pool_1"]}, "'Pool_1' is not a valid IPAddressPool name"),
    ("l2-node-selector-bad-operator", L2, {"nodeSelectors": [sel(expr("zone", "Gt", ["1"]))]},
     'Unsupported value: "Gt"'),
    ("l2-service-selector-in-without-values", L2, {"serviceSelectors": [sel(expr("app", "In", []))]},
     "operator In needs at least one value"),
    ("l2-node-selector-in-without-values", L2, {"nodeSelectors": [sel(expr("zone", "In", []))]},
     "operator In needs at least one value"),
    ("l2-pool-selector-doesnotexist-with-values", L2,
     {"ipAddressPoolSelectors": [sel(expr("tier", "DoesNotExist", ["gold"]))]},
     "operator DoesNotExist must not have 'values'"),
    ("l2-typo-field", L2, {"interface": ["eth0"]}, 'unknown field "spec.interface"'),
]

ACCEPTED: list[tuple[str, str, dict[str, Any]]] = [
    ("pool-ipv4-cidr-range-and-ip", POOL,
     pool("203.0.113.0/25", "203.0.113.200-203.0.113.210", "198.51.100.7")),
    ("pool-ipv6-slash-64", POOL, pool("2001:db8:1::/64")),
    ("pool-mixed-families", POOL,
     pool("203.0.113.0/24", "2001:db8::/64", "198.51.100.10-198.51.100.20", "2001:db8:1::10-2001:db8:1::ff")),
    ("pool-single-address-range", POOL, pool("198.51.100.9-198.51.100.9")),
    ("pool-range-across-octets", POOL, pool("198.51.100.250-203.0.113.5")),
    ("pool-ipv6-range-across-high-bits", POOL, pool("2001:db8:ffff::-2001:db9::1")),
    ("pool-ipv6-uppercase", POOL, pool("2001:DB8:2::/64")),
    ("pool-everything-set", POOL, pool(
        "203.0.113.0/24", autoAssign=False, avoidBuggyIPs=True, forwarding="NodePort",
        serviceAllocation={
            "priority": 0,
            "namespaces": ["default", "team-a"],
            "namespaceSelectors": [sel(team="blue")],
            "serviceSelectors": [sel(expr("app.kubernetes.io/name", "In", ["web", "api"]),
                                     expr("canary", "DoesNotExist"), tier="frontend"), {}],
        },
    )),
    ("l2-empty-spec", L2, {}),
    ("l2-everything-set", L2, {
        "ipAddressPools": ["adm-pool-ipv6-slash-64", "pool.example"],
        "ipAddressPoolSelectors": [sel(expr("tier", "NotIn", ["bronze"]))],
        "nodeSelectors": [sel(**{"kubernetes.io/os": "linux"}), sel(expr("edge", "Exists"))],
        "interfaces": ["eth0", "bond0.100", "enp0s31f6"],
        "serviceSelectors": [sel(app="web"), sel(expr("tier", "In", ["gold"]))],
    }),
]

# Accepted at admission on purpose: CEL sees one object and cannot afford everything; the operator
# reports these at run time (status condition Overlapping / Invalid and an Event).
RUNTIME_ONLY: list[tuple[str, str, dict[str, Any], str]] = [
    ("overlap-within-pool", POOL, pool("203.0.113.0/24", "203.0.113.128/25"),
     "overlapping entries of one pool: CEL would need every pair of entries; operator sets Overlapping"),
    ("overlap-range-and-cidr", POOL, pool("198.51.100.0/24", "198.51.100.10-198.51.100.20"),
     "same, range against CIDR"),
    ("l2-missing-pool", L2, {"ipAddressPools": ["no-such-pool"]},
     "references across objects are not visible to CEL; operator reports the missing pool"),
]


@pytest.fixture(scope="module")
def crds(kube: Any) -> Iterator[Any]:
    # Same field manager as the lab's own install (plain `kubectl apply --server-side`), so neither
    # takes fields away from the other.
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    kube.kubectl("wait", "--for", "condition=established", "--timeout=60s",
                 f"crd/{constants.IPADDRESSPOOL_CRD_NAME}", f"crd/{constants.L2ADVERTISEMENT_CRD_NAME}")
    _delete_test_objects(kube)  # left over from an interrupted run
    yield kube
    _delete_test_objects(kube)


def _delete_test_objects(kube: Any) -> None:
    for resource in RESOURCE.values():
        kube.kubectl("delete", resource, "-l", f"{TEST_LABEL}={TEST_LABEL_VALUE}", "--ignore-not-found",
                     "--wait=false", check=False)


def apply(kube: Any, obj: dict[str, Any], *, dry_run: bool = False) -> Any:
    """`kubectl apply -f -`, as a person would (client-side apply, strict field validation).

    With dry_run the API server runs all of admission (schema, CEL, defaulting) and answers with
    the object as it would store it, but stores nothing: a live operator in the lab never sees it.
    """
    extra = ["--dry-run=server"] if dry_run else []
    return kube.kubectl("apply", *extra, "-o", "json", "-f", "-", input=json.dumps(obj), check=False)


def delete(kube: Any, obj: dict[str, Any]) -> None:
    kube.kubectl("delete", RESOURCE[obj["kind"]], obj["metadata"]["name"], "--ignore-not-found",
                 "--wait=false", check=False)


@pytest.mark.parametrize(("case_id", "kind", "spec", "expected"), REJECTED, ids=[c[0] for c in REJECTED])
def test_bad_object_is_rejected_with_a_readable_message(
    crds: Any, case_id: str, kind: str, spec: dict[str, Any] | None, expected: str,
) -> None:
    obj = manifest(kind, object_name(case_id), spec)
    result = apply(crds, obj)
    if result.returncode == 0:
        delete(crds, obj)
        pytest.fail(f"{case_id}: accepted, expected a rejection mentioning {expected!r}")
    assert expected in result.stderr, f"{case_id}: expected {expected!r} in:\n{result.stderr}"


@pytest.mark.parametrize(("case_id", "kind", "spec"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_good_object_is_accepted(crds: Any, case_id: str, kind: str, spec: dict[str, Any]) -> None:
    result = apply(crds, manifest(kind, object_name(case_id), spec), dry_run=True)
    assert result.returncode == 0, f"{case_id}: rejected:\n{result.stderr}"
    stored = json.loads(result.stdout)
    for key, value in spec.items():
        assert stored["spec"][key] == value
    if kind == POOL:  # defaults filled in by the API server
        assert stored["spec"]["autoAssign"] is spec.get("autoAssign", True)
        assert stored["spec"]["avoidBuggyIPs"] is spec.get("avoidBuggyIPs", False)
        assert stored["spec"]["forwarding"] == spec.get("forwarding", "KubeProxy")


@pytest.mark.parametrize(("case_id", "kind", "spec", "why"), RUNTIME_ONLY, ids=[c[0] for c in RUNTIME_ONLY])
def test_runtime_only_problem_is_admitted(crds: Any, case_id: str, kind: str, spec: dict[str, Any],
                                          why: str) -> None:
    result = apply(crds, manifest(kind, object_name(case_id), spec), dry_run=True)
    assert result.returncode == 0, f"{case_id} ({why}): unexpectedly rejected:\n{result.stderr}"


def test_a_pool_overlapping_an_existing_pool_is_admitted(crds: Any) -> None:
    """Overlap between pools is a runtime check (the operator's Overlapping condition)."""
    first = manifest(POOL, "adm-overlap-1", pool("198.51.100.248/29", autoAssign=False))
    second = manifest(POOL, "adm-overlap-2", pool("198.51.100.250-198.51.100.251", autoAssign=False))
    try:
        result = apply(crds, first)
        assert result.returncode == 0, result.stderr
        result = apply(crds, second, dry_run=True)
        assert result.returncode == 0, result.stderr
    finally:
        delete(crds, first)


def test_status_subresource_and_printer_columns(crds: Any) -> None:
    """The operator writes status through the subresource; a /64's free count (2^64) fits as a
    string; `kubectl get` shows the columns."""
    obj = manifest(POOL, "adm-status", pool("198.51.100.248/29", "2001:db8:5::/64", autoAssign=False))
    name = obj["metadata"]["name"]
    resource = constants.IPADDRESSPOOL_CRD_NAME
    status = {
        "observedGeneration": 1, "assignedIPv4": 3, "availableIPv4": 5, "assignedIPv6": 1,
        "availableIPv6": str(2**64 - 1),
        "conditions": [{"type": "Overlapping", "status": "False", "reason": "NoOverlap",
                        "message": "no overlap", "lastTransitionTime": "2025-01-01T00:00:00Z"}],
    }
    try:
        result = apply(crds, obj)
        assert result.returncode == 0, result.stderr
        # Dry-run patches: schema-checked by the server, and a live operator's own writes cannot race.
        patch = ("patch", resource, name, "--subresource=status", "--type=merge", "--dry-run=server")
        patched = crds.kubectl(*patch, "-o", "json", "-p", json.dumps({"status": status}))
        assert json.loads(patched.stdout)["status"]["availableIPv6"] == str(2**64 - 1)
        wrong = {"status": {"availableIPv6": "lots", "assignedIPv4": -1}}
        bad = crds.kubectl(*patch, "-p", json.dumps(wrong), check=False)
        assert bad.returncode != 0
        assert "status.availableIPv6" in bad.stderr and "status.assignedIPv4" in bad.stderr

        table = crds.kubectl("get", resource, name, "-o", "wide").stdout
        header, row = table.splitlines()[:2]
        for column in ("ADDRESSES", "AUTO ASSIGN", "ASSIGNED V4", "AVAILABLE V4", "ASSIGNED V6",
                       "AVAILABLE V6", "FORWARDING", "PRIORITY", "AGE"):
            assert column in header
        for cell in ('["198.51.100.248/29","2001:db8:5::/64"]', "false", "KubeProxy"):
            assert cell in row
        listed = crds.kubectl("get", constants.CATEGORY, "-o", "name").stdout.split()
        assert f"{constants.IPADDRESSPOOL_SINGULAR}.{constants.GROUP}/{name}" in listed
    finally:
        delete(crds, obj)
