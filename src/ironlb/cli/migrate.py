"""`ironlb migrate metallb`: MetalLB's metallb.io objects (layer 2 and BGP) -> IronLB's, field by field.

Every field is either carried or named in a note saying why not: nothing is dropped silently.
Services need no change (IronLB reads the metallb.io/ annotations), and the operator keeps the
IPs MetalLB wrote in their status when an IronLB pool covers them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ironlb.api.constants import (
    API_VERSION,
    BFDPROFILE_KIND,
    BFDPROFILES,
    BGPADVERTISEMENT_KIND,
    BGPADVERTISEMENTS,
    BGPPEER_KIND,
    BGPPEERS,
    GROUP,
    IPADDRESSPOOL_KIND,
    L2ADVERTISEMENT_KIND,
    VERSION,
)
from ironlb.cli import migrate_bgp
from ironlb.common.kubeapi import APPLY, IP_ADDRESS_POOLS, L2_ADVERTISEMENTS, ApiError, Client, Resource

METALLB_API = "metallb.io/v1beta1"
POOL_FIELDS = ("addresses", "autoAssign", "avoidBuggyIPs", "serviceAllocation")
ALLOCATION_FIELDS = ("priority", "namespaces", "namespaceSelectors", "serviceSelectors")
L2_FIELDS = ("ipAddressPools", "ipAddressPoolSelectors", "nodeSelectors", "interfaces", "serviceSelectors")
BGP_KINDS = ("BGPAdvertisement", "BGPPeer", "BFDProfile", "Community")
METALLB_BGPPEER_API = "metallb.io/v1beta2"  # BGPPeer's stored version since MetalLB 0.14; v1beta1 is read too


class MigrationError(ValueError):
    """Input that is not a Kubernetes object: every such document is named and nothing is converted."""


@dataclass
class Migration:
    """The IronLB objects made, and a note for everything that could not be carried."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _names: dict[tuple[str, str], str] = field(default_factory=dict)


def _meta(obj: Mapping[str, Any], kind: str, out: Migration) -> dict[str, Any] | None:
    """metadata for the cluster-scoped IronLB object, or None (with a note) on a name clash."""
    meta = obj.get("metadata") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    where = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
    if (kind, name) in out._names:
        out.notes.append(f"{where}: skipped, {out._names[(kind, name)]} already became {kind} {name} "
                         "(IronLB's objects are cluster-scoped: rename one and migrate again)")
        return None
    out._names[(kind, name)] = where
    kept = {"name": name}
    if meta.get("labels"):
        kept["labels"] = dict(meta["labels"])  # ipAddressPoolSelectors select pools by these
    return kept


def _unknown(where: str, spec: Mapping[str, Any], known: Iterable[str], out: Migration) -> None:
    for key in sorted(set(spec) - set(known)):
        out.notes.append(f"{where}: spec.{key} is not carried: IronLB has no such field")


def pool(obj: Mapping[str, Any], out: Migration) -> None:
    """One MetalLB IPAddressPool."""
    meta = _meta(obj, IPADDRESSPOOL_KIND, out)
    if meta is None:
        return
    spec, where = obj.get("spec") or {}, f"IPAddressPool {meta['name']}"
    _unknown(where, spec, POOL_FIELDS, out)
    new = {k: spec[k] for k in POOL_FIELDS if k in spec}
    allocation = spec.get("serviceAllocation") or {}
    _unknown(f"{where} serviceAllocation", allocation, ALLOCATION_FIELDS, out)
    if allocation:
        new["serviceAllocation"] = {k: allocation[k] for k in ALLOCATION_FIELDS if k in allocation}
    out.objects.append({"apiVersion": API_VERSION, "kind": IPADDRESSPOOL_KIND, "metadata": meta, "spec": new})


def l2(obj: Mapping[str, Any], out: Migration) -> None:
    """One MetalLB L2Advertisement."""
    meta = _meta(obj, L2ADVERTISEMENT_KIND, out)
    if meta is None:
        return
    spec = obj.get("spec") or {}
    _unknown(f"L2Advertisement {meta['name']}", spec, L2_FIELDS, out)
    out.objects.append({"apiVersion": API_VERSION, "kind": L2ADVERTISEMENT_KIND, "metadata": meta,
                        "spec": {k: spec[k] for k in L2_FIELDS if k in spec}})


def bgp(obj: Mapping[str, Any], aliases: Mapping[str, str], out: Migration) -> None:
    """One MetalLB BGPPeer, BFDProfile or BGPAdvertisement; a Community is written out where it is used."""
    kind = obj.get("kind")
    if kind == "Community":
        name = (obj.get("metadata") or {}).get("name", "?")
        out.notes.append(f"Community {name}: not carried as an object (IronLB has no Community kind): its aliases "
                         "are written out as values in the BGPAdvertisements that use them")
        return
    meta = _meta(obj, str(kind), out)
    if meta is None:
        return
    spec, where = obj.get("spec") or {}, f"{kind} {meta['name']}"
    if kind == BGPPEER_KIND:
        new, notes = migrate_bgp.peer(spec, where)
    elif kind == BFDPROFILE_KIND:
        new, notes = migrate_bgp.bfd_profile(spec, where)
    else:
        new, notes = migrate_bgp.advertisement(spec, where, aliases)
    out.notes += notes
    out.objects.append({"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": new})


def migrate(documents: Iterable[Any], names: Sequence[str] = ()) -> Migration:
    """Convert MetalLB objects (List objects are unpacked); note every one that is not carried.

    Raises MigrationError, naming each document (NAMES, else "document N") that is not an object."""
    docs = list(documents)
    problems = [f"{names[i] if i < len(names) else f'document {i + 1}'}: {problem}"
                for i, doc in enumerate(docs) if (problem := document_problem(doc))]
    if problems:
        raise MigrationError("; ".join(problems) + ": nothing converted")
    out = Migration()
    objects = list(_flatten(docs))
    aliases = migrate_bgp.community_aliases(d for d in objects if d.get("kind") == "Community")
    for doc in objects:
        kind, api = doc.get("kind"), doc.get("apiVersion")
        name = (doc.get("metadata") or {}).get("name", "?")
        if api != METALLB_API and not (kind == BGPPEER_KIND and api == METALLB_BGPPEER_API):
            out.notes.append(f"{kind} {name} ({api}): not a {METALLB_API} object, skipped")
        elif kind == "IPAddressPool":
            pool(doc, out)
        elif kind == "L2Advertisement":
            l2(doc, out)
        elif kind in BGP_KINDS:
            bgp(doc, aliases, out)
        else:
            out.notes.append(f"{kind} {name}: not carried: IronLB has no such object")
    if any(o["kind"] == IPADDRESSPOOL_KIND for o in out.objects) and not any(
            o["kind"] in (L2ADVERTISEMENT_KIND, BGPADVERTISEMENT_KIND) for o in out.objects):
        out.notes.append("no L2Advertisement or BGPAdvertisement: the pools' IPs will be assigned but not announced "
                         "until one exists")
    return out


# Fields read as mappings: each must be one (or absent) in every object.
MAPPING_FIELDS = (("metadata",), ("metadata", "labels"), ("spec",), ("spec", "serviceAllocation"))


def _type(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__)


def object_problem(obj: Any) -> str | None:
    """What keeps OBJ from being read as a Kubernetes object (None: nothing)."""
    if not isinstance(obj, Mapping):
        return f"is {_type(obj)}, not a mapping (a Kubernetes object)"
    for path in MAPPING_FIELDS:
        value: Any = obj
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is not None and not isinstance(value, Mapping):
            return f"its {'.'.join(path)} is {_type(value)}, not a mapping"
    return None


def document_problem(doc: Any) -> str | None:
    """What keeps one YAML document (an object or a List of them) from being migrated (None: nothing)."""
    if doc is None or (isinstance(doc, Mapping) and not doc):
        return None  # an empty document (`---` twice): nothing to convert
    if (problem := object_problem(doc)) is not None:
        return problem
    if not _is_list(doc):
        return None
    if not isinstance(doc["items"], list):
        return f"its items is {_type(doc['items'])}, not a list"
    return next((f"item {i + 1} {p}" for i, item in enumerate(doc["items"]) if (p := object_problem(item))), None)


def _is_list(doc: Mapping[str, Any]) -> bool:
    return str(doc.get("kind", "")).endswith("List") and "items" in doc


def _flatten(documents: Iterable[Any]) -> Iterable[Mapping[str, Any]]:
    for doc in documents:
        if not doc:
            continue
        if _is_list(doc):
            for item in doc["items"]:
                yield {"apiVersion": doc.get("apiVersion"), **item}  # an item's own apiVersion wins
        else:
            yield doc


METALLB_RESOURCES = {"ipaddresspools": "IPAddressPool", "l2advertisements": "L2Advertisement",
                     "bgpadvertisements": "BGPAdvertisement", "bgppeers": "BGPPeer", "bfdprofiles": "BFDProfile",
                     "communities": "Community"}
# Versions to list a kind at, newest first: BGPPeer's v1beta1 view drops v1beta2's fields (dynamicASN, interface,
# passwordSecret ...), so it is read only from a MetalLB that does not serve v1beta2.
METALLB_VERSIONS = {"bgppeers": ("v1beta2", "v1beta1")}


def from_cluster(kube: Client) -> list[dict[str, Any]]:
    """MetalLB's objects as the cluster holds them, in every namespace (kinds whose CRD is absent are skipped)."""
    found: list[dict[str, Any]] = []
    for plural, kind in METALLB_RESOURCES.items():
        for version in METALLB_VERSIONS.get(plural, ("v1beta1",)):
            try:
                listed = kube.list(Resource("metallb.io", version, plural), timeout=30)
            except ApiError as exc:
                if exc.status == 404:
                    continue
                raise
            found += [{"apiVersion": f"metallb.io/{version}", "kind": kind, **item} for item in listed.get("items", [])]
            break
    return found


def apply(kube: Client, objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Server-side apply each IronLB object; return what was applied."""
    resource = {IPADDRESSPOOL_KIND: IP_ADDRESS_POOLS, L2ADVERTISEMENT_KIND: L2_ADVERTISEMENTS}
    resource |= {kind: Resource(GROUP, VERSION, plural, namespaced=False) for kind, plural in (
        (BGPPEER_KIND, BGPPEERS), (BFDPROFILE_KIND, BFDPROFILES), (BGPADVERTISEMENT_KIND, BGPADVERTISEMENTS))}
    done = []
    for obj in objects:
        name = obj["metadata"]["name"]
        kube.request("PATCH", resource[obj["kind"]].path(None, name), {"fieldManager": "ironlb-migrate", "force": True},
                     body=dict(obj), content_type=APPLY, timeout=30)
        done.append(f"{obj['kind']} {name}")
    return done
