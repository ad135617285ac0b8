"""`ironlb migrate metallb`: MetalLB's metallb.io/v1beta1 layer-2 objects -> IronLB's, field by field.

Every field is either carried or named in a note saying why not: nothing is dropped silently.
Services need no change (IronLB reads the metallb.io/ annotations), and the operator keeps the
IPs MetalLB wrote in their status when an IronLB pool covers them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ironlb.api.constants import API_VERSION, IPADDRESSPOOL_KIND, L2ADVERTISEMENT_KIND

METALLB_API = "metallb.io/v1beta1"
POOL_FIELDS = ("addresses", "autoAssign", "avoidBuggyIPs", "serviceAllocation")
ALLOCATION_FIELDS = ("priority", "namespaces", "namespaceSelectors", "serviceSelectors")
L2_FIELDS = ("ipAddressPools", "ipAddressPoolSelectors", "nodeSelectors", "interfaces")
BGP_KINDS = ("BGPAdvertisement", "BGPPeer", "BFDProfile", "Community")


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


def migrate(documents: Iterable[Mapping[str, Any]]) -> Migration:
    """Convert MetalLB objects (List objects are unpacked); note every one that is not layer-2 config."""
    out = Migration()
    for doc in _flatten(documents):
        kind, api = doc.get("kind"), doc.get("apiVersion")
        name = (doc.get("metadata") or {}).get("name", "?")
        if api != METALLB_API:
            out.notes.append(f"{kind} {name} ({api}): not a {METALLB_API} object, skipped")
        elif kind == "IPAddressPool":
            pool(doc, out)
        elif kind == "L2Advertisement":
            l2(doc, out)
        elif kind in BGP_KINDS:
            out.notes.append(f"{kind} {name}: not carried: IronLB announces in layer 2 only (no BGP)")
        else:
            out.notes.append(f"{kind} {name}: not carried: IronLB has no such object")
    if any(o["kind"] == IPADDRESSPOOL_KIND for o in out.objects) and not any(
            o["kind"] == L2ADVERTISEMENT_KIND for o in out.objects):
        out.notes.append("no L2Advertisement: the pools' IPs will be assigned but not announced until one exists")
    return out


def _flatten(documents: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for doc in documents:
        if not doc:
            continue
        if str(doc.get("kind", "")).endswith("List") and "items" in doc:
            for item in doc["items"]:
                yield {"apiVersion": doc.get("apiVersion"), **item}  # an item's own apiVersion wins
        else:
            yield doc


METALLB_RESOURCES = {"ipaddresspools": "IPAddressPool", "l2advertisements": "L2Advertisement",
                     "bgpadvertisements": "BGPAdvertisement", "bgppeers": "BGPPeer"}


def from_cluster(custom: Any) -> list[dict[str, Any]]:
    """MetalLB's objects as the cluster holds them (kinds whose CRD is absent are skipped)."""
    from kubernetes.client.rest import ApiException

    found: list[dict[str, Any]] = []
    for plural, kind in METALLB_RESOURCES.items():
        try:
            listed = custom.list_cluster_custom_object("metallb.io", "v1beta1", plural, _request_timeout=30)
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        found += [{"apiVersion": METALLB_API, "kind": kind, **item} for item in listed.get("items", [])]
    return found


def apply(custom: Any, objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Server-side apply each IronLB object; return what was applied."""
    from ironlb.api.constants import GROUP, IPADDRESSPOOLS, L2ADVERTISEMENTS, VERSION

    plural = {IPADDRESSPOOL_KIND: IPADDRESSPOOLS, L2ADVERTISEMENT_KIND: L2ADVERTISEMENTS}
    done = []
    for obj in objects:
        name = obj["metadata"]["name"]
        custom.patch_cluster_custom_object(GROUP, VERSION, plural[obj["kind"]], name, dict(obj),
                                           field_manager="ironlb-migrate", force=True,
                                           _content_type="application/apply-patch+yaml", _request_timeout=30)
        done.append(f"{obj['kind']} {name}")
    return done
