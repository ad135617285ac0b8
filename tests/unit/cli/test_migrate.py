"""MetalLB -> IronLB: every field carried or named in a note, nothing dropped silently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ironlb.cli.migrate import MigrationError, migrate

ML = "metallb.io/v1beta1"


def obj(kind: str, name: str, spec: dict, namespace: str = "metallb-system", **meta: object) -> dict:
    return {"apiVersion": ML, "kind": kind, "metadata": {"name": name, "namespace": namespace, **meta}, "spec": spec}


def test_pools_and_advertisements_carry_every_field() -> None:
    pool_spec = {"addresses": ["203.0.113.0/24", "2001:db8:ffff::/120"], "autoAssign": False, "avoidBuggyIPs": True,
                 "serviceAllocation": {"priority": 5, "namespaces": ["a"],
                                       "namespaceSelectors": [{"matchLabels": {"t": "x"}}],
                                       "serviceSelectors": [
                                           {"matchExpressions": [{"key": "k", "operator": "Exists"}]}]}}
    l2_spec = {"ipAddressPools": ["p"], "ipAddressPoolSelectors": [{"matchLabels": {"tier": "a"}}],
               "nodeSelectors": [{"matchLabels": {"zone": "z"}}], "interfaces": ["eth0"],
               # MetalLB 0.16: which Services the advertisement applies to
               "serviceSelectors": [{"matchLabels": {"app": "web"}},
                                    {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}]}
    out = migrate([obj("IPAddressPool", "p", pool_spec, labels={"tier": "a"}), obj("L2Advertisement", "l", l2_spec)])
    assert out.notes == []
    pool, l2 = out.objects
    assert pool == {"apiVersion": "ironlb.io/v1beta1", "kind": "IPAddressPool",
                    "metadata": {"name": "p", "labels": {"tier": "a"}}, "spec": pool_spec}
    assert l2["kind"] == "L2Advertisement" and l2["spec"] == l2_spec and "namespace" not in l2["metadata"]


def test_what_cannot_be_carried_is_named() -> None:
    out = migrate([
        obj("IPAddressPool", "p", {"addresses": ["203.0.113.0/24"], "allocateTo": "x",
                                   "serviceAllocation": {"priority": 1, "future": 2}}),
        obj("Community", "c", {}),
        obj("IPAddressPool", "p", {"addresses": ["198.51.100.0/24"]}, namespace="other"),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config"}},
    ])
    text = "\n".join(out.notes)
    assert "spec.allocateTo is not carried" in text
    assert "serviceAllocation: spec.future is not carried" in text
    assert "Community c: not carried as an object" in text
    assert "IPAddressPool other/p: skipped" in text and "cluster-scoped" in text
    assert "ConfigMap config (v1): not a metallb.io/v1beta1 object" in text
    assert "no L2Advertisement" in text
    assert [o["metadata"]["name"] for o in out.objects] == ["p"]


def test_a_kubectl_list_is_unpacked() -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": [obj("IPAddressPool", "p", {"addresses": ["203.0.113.1"]}),
                                                          obj("L2Advertisement", "l", {})]}
    out = migrate([listed])
    assert [o["kind"] for o in out.objects] == ["IPAddressPool", "L2Advertisement"] and out.notes == []


def test_the_command_prints_yaml_and_notes_apart(tmp_path) -> None:
    src = tmp_path / "metallb.yaml"
    src.write_text(yaml.safe_dump_all([obj("IPAddressPool", "p", {"addresses": ["203.0.113.0/24"]}),
                                       obj("BGPPeer", "peer", {"myASN": 64512, "localASN": 64600})]))
    ironlb = Path(sys.executable).parent / "ironlb"  # the installed console script
    res = subprocess.run([str(ironlb), "migrate", "metallb", "-f", str(src)],
                         capture_output=True, text=True, check=True)
    docs = list(yaml.safe_load_all(res.stdout))
    assert docs[0]["kind"] == "IPAddressPool" and docs[0]["apiVersion"] == "ironlb.io/v1beta1"
    assert "note: BGPPeer peer: spec.localASN is not carried" in res.stderr


def test_installed_as_a_kubectl_plugin() -> None:
    plugin = Path(sys.executable).parent / "kubectl-ironlb"
    res = subprocess.run([str(plugin), "migrate", "metallb", "--help"], capture_output=True, text=True, check=True)
    assert res.stdout.startswith("usage: kubectl ironlb migrate metallb")
    assert "ironlb migrate metallb --apply" in res.stdout


@pytest.mark.parametrize("doc, named", [
    (["203.0.113.0/24"], "document 2: is a list, not a mapping"),
    ("just text", "document 2: is a string, not a mapping"),
    (7, "document 2: is a number, not a mapping"),
    ({"apiVersion": ML, "kind": "IPAddressPool", "metadata": ["p"], "spec": {}}, "document 2: its metadata is a list"),
    ({"apiVersion": ML, "kind": "IPAddressPool", "metadata": {"name": "p"}, "spec": "x"}, "its spec is a string"),
    ({"apiVersion": ML, "kind": "IPAddressPool", "metadata": {"name": "p", "labels": ["a"]}}, "metadata.labels"),
    (obj("IPAddressPool", "p", {"serviceAllocation": [1]}), "document 2: its spec.serviceAllocation is a list"),
    ({"apiVersion": "v1", "kind": "List", "items": {"a": 1}}, "document 2: its items is dict, not a list"),
    ({"apiVersion": "v1", "kind": "List", "items": [obj("L2Advertisement", "l", {}), "x"]},
     "document 2: item 2 is a string"),
])
def test_a_document_that_is_not_an_object_is_named_and_nothing_is_converted(doc: object, named: str) -> None:
    good = obj("IPAddressPool", "p", {"addresses": ["203.0.113.0/24"]})
    with pytest.raises(MigrationError, match="nothing converted") as err:
        migrate([good, doc, None])
    assert named in str(err.value)


def test_empty_documents_are_skipped() -> None:
    assert [o["kind"] for o in migrate([None, {}, obj("L2Advertisement", "l", {})]).objects] == ["L2Advertisement"]


def test_the_command_names_the_bad_document_and_prints_nothing(tmp_path) -> None:
    src = tmp_path / "metallb.yaml"
    src.write_text(yaml.safe_dump(obj("IPAddressPool", "p", {"addresses": ["203.0.113.0/24"]}))
                   + "---\n- not\n- an object\n---\n: [\n")
    ironlb = Path(sys.executable).parent / "ironlb"
    res = subprocess.run([str(ironlb), "migrate", "metallb", "-f", str(src)], capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == "" and "Traceback" not in res.stderr
    assert res.stderr.startswith("error: ")  # not YAML at all: the parser's own words, with the line
    src.write_text(yaml.safe_dump(obj("IPAddressPool", "p", {})) + "---\n- not\n- an object\n")
    res = subprocess.run([str(ironlb), "migrate", "metallb", "-f", str(src)], capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == ""
    assert f"error: {src} document 2: is a list, not a mapping" in res.stderr
