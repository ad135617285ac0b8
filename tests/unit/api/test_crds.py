"""The generated CRDs: committed YAML in sync, schemas structural, every CEL rule explained."""

from __future__ import annotations

import ipaddress
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ironlb import api
from ironlb.api import constants, crds
from ironlb.api.addresses import ADDRESS_MAX_LENGTH, ADDRESS_RULES
from ironlb.api.schema import CEL, cel_string

REPO = Path(__file__).resolve().parents[3]
CRD_DIR = REPO / "charts" / "ironlb" / "crds"

MANIFESTS = crds.crd_manifests()
IDS = [m["metadata"]["name"] for m in MANIFESTS]


def _schema(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with a readable path (items as [], map values as {})."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


# --- the committed files -------------------------------------------------------------------------


def test_committed_crd_files_equal_the_generated_ones() -> None:
    problems = crds.check(CRD_DIR)
    assert not problems, "\n".join(problems) + "\nrun: python -m ironlb.api.crds write charts/ironlb/crds"


def test_committed_yaml_loads_back_to_the_manifests() -> None:
    for manifest in MANIFESTS:
        loaded = yaml.safe_load((CRD_DIR / crds.file_name(manifest)).read_text())
        assert loaded == manifest


def test_cli_write_then_check_and_detect_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crds.main(["write", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(crds.rendered_files())
    assert crds.main(["check", str(tmp_path)]) == 0

    victim = tmp_path / crds.file_name(MANIFESTS[0])
    victim.write_text(victim.read_text().replace("maxItems: 64", "maxItems: 65"))
    assert crds.main(["check", str(tmp_path)]) == 1
    assert "differs from the generated file" in capsys.readouterr().err

    crds.main(["write", str(tmp_path)])
    (tmp_path / "stale.yaml").write_text("{}\n")
    assert crds.main(["check", str(tmp_path)]) == 1
    assert "stale" in capsys.readouterr().err

    (tmp_path / "stale.yaml").unlink()
    victim.unlink()
    assert crds.main(["check", str(tmp_path)]) == 1
    assert "missing" in capsys.readouterr().err


def test_module_runs_as_a_command() -> None:
    result = subprocess.run([sys.executable, "-m", "ironlb.api.crds", "check", str(CRD_DIR)],
                            capture_output=True, text=True, check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr


# --- names ---------------------------------------------------------------------------------------


def test_constants() -> None:
    assert (api.GROUP, api.VERSION, api.API_VERSION) == ("ironlb.io", "v1beta1", "ironlb.io/v1beta1")
    assert (api.IPADDRESSPOOLS, api.L2ADVERTISEMENTS) == ("ipaddresspools", "l2advertisements")
    assert api.FORWARDING_MODES == ("KubeProxy", "NodePort")


@pytest.mark.parametrize(
    ("manifest", "kind", "plural"),
    [(MANIFESTS[0], constants.IPADDRESSPOOL_KIND, constants.IPADDRESSPOOLS),
     (MANIFESTS[1], constants.L2ADVERTISEMENT_KIND, constants.L2ADVERTISEMENTS),
     (MANIFESTS[2], constants.BGPPEER_KIND, constants.BGPPEERS),
     (MANIFESTS[3], constants.BFDPROFILE_KIND, constants.BFDPROFILES),
     (MANIFESTS[4], constants.BGPADVERTISEMENT_KIND, constants.BGPADVERTISEMENTS),
     (MANIFESTS[5], constants.BGPNODESTATUS_KIND, constants.BGPNODESTATUSES)],
    ids=IDS,
)
def test_crd_identity(manifest: dict[str, Any], kind: str, plural: str) -> None:
    spec = manifest["spec"]
    assert manifest["metadata"]["name"] == f"{plural}.{constants.GROUP}"
    assert spec["group"] == constants.GROUP
    assert spec["scope"] == "Cluster"
    assert spec["names"]["kind"] == kind
    assert spec["names"]["plural"] == plural
    assert spec["names"]["categories"] == [constants.CATEGORY]
    [version] = spec["versions"]
    assert version["name"] == constants.VERSION
    assert version["served"] and version["storage"]
    # BGPNodeStatus is all status, created and changed by one writer in one apply: no subresource.
    assert version.get("subresources") == (None if kind == constants.BGPNODESTATUS_KIND else {"status": {}})


# --- structural schema and CEL hygiene ----------------------------------------------------------


@pytest.mark.parametrize("manifest", MANIFESTS, ids=IDS)
def test_every_node_is_typed_and_bounded(manifest: dict[str, Any]) -> None:
    for path, node in walk(_schema(manifest)):
        assert node.get("type") in {"object", "array", "string", "integer", "boolean", "number"}, path
        assert node.get("description") or path.startswith(".metadata") or path.endswith(("[]", "{}")), path
        if node["type"] == "array":
            assert "items" in node and "maxItems" in node, f"{path}: arrays need items and maxItems"
            assert node.get("x-kubernetes-list-type") in {"atomic", "set", "map"}, path
        if node["type"] == "string" and path not in {".apiVersion", ".kind"}:
            assert "maxLength" in node or "enum" in node or node.get("format") == "date-time", (
                f"{path}: strings need maxLength (CEL cost estimation and sane limits)")
        if node["type"] == "object" and path != ".metadata":
            assert "properties" in node or "additionalProperties" in node, path
            if "additionalProperties" in node:
                assert "maxProperties" in node, path
        for required in node.get("required", []):
            assert required in node.get("properties", {}), f"{path}: required {required} is not a property"
        if "default" in node:
            expected = {"boolean": bool, "string": str, "integer": int}[node["type"]]
            assert isinstance(node["default"], expected), path
            assert "enum" not in node or node["default"] in node["enum"], path


@pytest.mark.parametrize("manifest", MANIFESTS, ids=IDS)
def test_every_rule_has_a_message_naming_the_problem(manifest: dict[str, Any]) -> None:
    node_types = {path: node["type"] for path, node in walk(_schema(manifest))}
    rules = [(path, r) for path, node in walk(_schema(manifest))
             for r in node.get("x-kubernetes-validations", [])]
    assert rules or manifest["spec"]["names"]["kind"] == constants.BFDPROFILE_KIND  # its checks are all ranges
    for path, r in rules:
        assert set(r) <= {"rule", "message", "messageExpression", "fieldPath", "reason", "optionalOldSelf"}
        assert isinstance(r["rule"], CEL), path
        assert r.get("message", "").strip(), f"{path}: rule without message: {r['rule']}"
        assert "\n" not in r["message"]
        if node_types[path] == "string":  # name the offending value
            assert "self" in r.get("messageExpression", ""), f"{path}: message should quote the value"
        for text in (r["rule"], r.get("messageExpression", "")):
            unquoted = re.sub(r"'[^']*'|\"[^\"]*\"", "", text)
            for open_, close in ("()", "[]", "{}"):
                assert unquoted.count(open_) == unquoted.count(close), f"{path}: unbalanced {open_}{close}"


def test_address_entries_are_bounded_for_cel_cost() -> None:
    pool = _schema(MANIFESTS[0])
    entries = pool["properties"]["spec"]["properties"]["addresses"]
    assert entries["maxItems"] <= 64
    assert entries["items"]["maxLength"] == ADDRESS_MAX_LENGTH
    assert entries["items"]["x-kubernetes-validations"] == ADDRESS_RULES
    # The longest real entry, an IPv6 range in full, must fit.
    longest = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    assert len(longest) <= ADDRESS_MAX_LENGTH


def test_available_ipv6_is_a_string_because_int64_overflows() -> None:
    status = _schema(MANIFESTS[0])["properties"]["status"]["properties"]
    assert status["availableIPv6"]["type"] == "string"
    assert re.fullmatch(status["availableIPv6"]["pattern"].strip("^$"), str(2**128))
    assert len(str(2**128)) <= status["availableIPv6"]["maxLength"]
    for name in ("assignedIPv4", "availableIPv4", "assignedIPv6"):
        assert status[name]["type"] == "integer"


@pytest.mark.parametrize("manifest", MANIFESTS, ids=IDS)
def test_printer_columns_point_at_schema_fields(manifest: dict[str, Any]) -> None:
    schema = _schema(manifest)
    columns = manifest["spec"]["versions"][0]["additionalPrinterColumns"]
    assert columns[-1]["name"] == "Age"
    for column in columns:
        if column["jsonPath"] == ".metadata.creationTimestamp":
            continue
        node = schema
        for part in column["jsonPath"].lstrip(".").split("."):
            node = node["properties"][part]
        expected = {"array": "string", "object": "string"}.get(node["type"], node["type"])
        if node.get("format") == "date-time":
            expected = "date"
        assert column["type"] == expected, column


def test_cel_string_quotes_text_and_splices_expressions() -> None:
    assert cel_string("'{v}' is bad", v="self") == "\"'\" + self + \"' is bad\""
    assert cel_string('say "{x}"\\', x="a.b") == '"say \\"" + a.b + "\\"\\\\"'
    assert cel_string("") == '""'


# --- the reasoning behind the range-order rule, checked in Python ------------------------------


def _cel_less_than(a: ipaddress._BaseAddress, b: ipaddress._BaseAddress) -> bool:
    """What the CEL rule computes: some n with a/n containing b, a/(n+1) not, and bit n of a zero."""
    bits = a.max_prefixlen

    def masked(x: ipaddress._BaseAddress, n: int) -> int:
        return int(x) >> (bits - n) << (bits - n) if n else 0

    return any(
        masked(a, n) == masked(b, n) and masked(a, n + 1) != masked(b, n + 1)
        and masked(a, n + 1) == masked(a, n)
        for n in range(bits)
    )


@pytest.mark.parametrize("bits", [32, 128])
def test_range_order_rule_agrees_with_integer_order(bits: int) -> None:
    rng = random.Random(bits)
    cls = ipaddress.IPv4Address if bits == 32 else ipaddress.IPv6Address
    pairs = [(0, 1), (1, 0), (2**bits - 1, 0), (2**(bits - 1), 2**(bits - 1) - 1)]
    pairs += [(rng.getrandbits(bits), rng.getrandbits(bits)) for _ in range(300)]
    pairs += [(x, x ^ (1 << rng.randrange(bits))) for x in (rng.getrandbits(bits) for _ in range(100))]
    for x, y in pairs:
        if x != y:
            assert _cel_less_than(cls(x), cls(y)) == (x < y), (cls(x), cls(y))
