"""What the speaker keeps of each watched object: the fields it reads, nothing else (the informers' transforms).

Objects from the API carry managedFields, kubectl's last-applied-configuration, labels and status the
speaker never reads; with 10,000 Services and as many EndpointSlices they are most of its memory. Each
function here keeps metadata.name, namespace and resourceVersion (the informer's keys and relist diffs),
then what cluster.py, incremental.py and status.py read. They are pure and take any shape: a field of the
wrong type is dropped, never raised on. A new field read there must be kept here too.

Parts that repeat across thousands of objects (an endpoint: its node and readiness; a pool's annotations) are
one shared read-only copy (`Shared`), so a slice costs its identity and a list of references, not a dict per
endpoint. Nothing in the speaker writes to a slim object; a shared part raises if anything tries.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, NoReturn

from ironlb.api.annotations import ANNOTATION_KEYS
from ironlb.api.constants import LB_CLEANUP_FINALIZER
from ironlb.core.bgp.nodedrain import DRAIN_TAINTS
from ironlb.speaker.state.cluster import SERVICE_NAME_LABEL

IDENTITY = ("name", "namespace", "resourceVersion")
# status.py: uid keys what was said and names the Events' object; generation becomes observedGeneration.
# deletionTimestamp: a Service being deleted is withdrawn (with the cleanup finalizer, see cluster.py).
SERVICE_METADATA = (*IDENTITY, "uid", "generation", "deletionTimestamp")
SERVICE_SPEC = ("type", "loadBalancerClass", "externalTrafficPolicy", "sessionAffinity", "healthCheckNodePort",
                "loadBalancerSourceRanges")
SERVICE_PORT = ("name", "protocol", "port", "nodePort")  # name: which EndpointSlice port serves it (steering)
SLICE_PORT = ("name", "protocol", "port")
# status.loadBalancer: the IPs. status.conditions whole: status.py reads its own conditions' every field
# (lastTransitionTime is carried over), and they are few.
SERVICE_STATUS = ("loadBalancer", "conditions")
# Tuples, not sets: `in` on a tuple compares, so an odd (unhashable) type in the input cannot raise.
NODE_CONDITIONS = ("Ready", "NetworkUnavailable")
NODE_ADDRESS_TYPES = ("InternalIP",)
# Fields whose values are few and repeat across thousands of objects (namespaces, node names, enums):
# one copy of each string, not one per object. Unique values (names, uids, versions) are not interned.
SHARED = frozenset({"namespace", "nodeName", "type", "status", "protocol", "externalTrafficPolicy",
                    "sessionAffinity", "loadBalancerClass"})
# Distinct shared parts kept (nodes x readiness states, pools' annotation sets: hundreds in practice). Past this
# the memo starts again, so odd input cannot grow it without bound; parts handed out before stay valid.
SHARE_LIMIT = 4096


class Shared(dict):  # type: ignore[type-arg]
    """A read-only dict, one copy of which many slim objects hold. Equal to, and read as, the plain dict."""

    __slots__ = ()

    def _read_only(self, *_: Any, **__: Any) -> NoReturn:
        raise TypeError("a shared part of a slim object is read-only")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only

    def __deepcopy__(self, memo: Any) -> Shared:
        return self

    def __reduce__(self) -> tuple[type, tuple[dict[str, Any]]]:
        return Shared, (dict(self),)


_memo: dict[Hashable, Shared] = {}


def _share(key: Hashable, value: dict[str, Any]) -> dict[str, Any]:
    """The one shared copy of VALUE, found by KEY (VALUE itself when KEY cannot be hashed: odd input)."""
    try:
        found = _memo.get(key)
    except TypeError:
        return value
    if found is None:
        if len(_memo) >= SHARE_LIMIT:
            _memo.clear()
        found = _memo[key] = Shared(value)
    return found


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> Iterable[Mapping[str, Any]]:
    """The mappings in a list field (anything else in it, or in its place, is nothing read)."""
    return (v for v in value if isinstance(v, Mapping)) if isinstance(value, list | tuple) else ()


def _pick(obj: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    # Only keys that are there: an absent field and a field set to None read differently (defaults).
    return {k: _shared(obj[k]) if k in SHARED else obj[k] for k in keys if k in obj}


def _shared(value: Any) -> Any:
    return sys.intern(value) if type(value) is str else value


def service(obj: Any) -> dict[str, Any]:
    """A Service as the speaker reads it: identity, IronLB's annotations, what it serves, its IPs and conditions."""
    obj = _mapping(obj)
    meta = _mapping(obj.get("metadata"))
    metadata = _pick(meta, SERVICE_METADATA)
    annotations = {k: v for k, v in _mapping(meta.get("annotations")).items() if k in ANNOTATION_KEYS}
    if annotations:  # the same few (a pool, a sharing key) on many Services
        metadata["annotations"] = _share(("annotations", *annotations.items()), annotations)
    finalizers = meta.get("finalizers")
    if isinstance(finalizers, list | tuple) and LB_CLEANUP_FINALIZER in finalizers:  # only whether ours is there
        metadata["finalizers"] = [LB_CLEANUP_FINALIZER]
    labels = {k: v for k, v in _mapping(meta.get("labels")).items() if isinstance(v, str)}
    if labels:  # L2Advertisements' serviceSelectors read them; the same few sets on many Services
        metadata["labels"] = _share(("labels", *sorted(labels.items())), labels)
    full_spec = _mapping(obj.get("spec"))
    spec = _pick(full_spec, SERVICE_SPEC)
    if "ports" in full_spec:
        spec["ports"] = [_pick(p, SERVICE_PORT) for p in _items(full_spec["ports"])]
    return {"metadata": metadata, "spec": spec, "status": _pick(_mapping(obj.get("status")), SERVICE_STATUS)}


def endpoint_slice(obj: Any) -> dict[str, Any]:
    """An EndpointSlice as the speaker reads it: its Service, which node each endpoint is on and if ready, and
    (for steering around dead nodes) its address type, ports and each endpoint's first address."""
    obj = _mapping(obj)
    meta = _mapping(obj.get("metadata"))
    metadata = _pick(meta, IDENTITY)
    labels = _pick(_mapping(meta.get("labels")), (SERVICE_NAME_LABEL,))
    if labels:
        metadata["labels"] = labels
    # An endpoint on no node is never counted: it is not kept at all.
    kept = [ep for ep in _items(obj.get("endpoints")) if ep.get("nodeName")]
    out = {"metadata": metadata, "endpoints": [_endpoint(ep) for ep in kept]}
    if isinstance(obj.get("addressType"), str):
        out["addressType"] = _shared(obj["addressType"])
    if "ports" in obj:
        out["ports"] = [_pick(p, SLICE_PORT) for p in _items(obj["ports"])]
    # Parallel to the endpoints; kept apart from them so that an endpoint stays one shared copy per node
    # and readiness (the address makes each unique).
    # An object slimmed before has them already (its endpoints do not).
    held = obj.get("addresses") if isinstance(obj.get("addresses"), list) else []
    out["addresses"] = [_first_address(ep, held[i] if i < len(held) else None) for i, ep in enumerate(kept)]
    return out


def _first_address(ep: Mapping[str, Any], held: object) -> str | None:
    addresses = ep.get("addresses")
    first = addresses[0] if isinstance(addresses, list | tuple) and addresses else held
    return first if isinstance(first, str) else None


def _endpoint(ep: Mapping[str, Any]) -> dict[str, Any]:
    node = _shared(ep["nodeName"])
    conditions = _mapping(ep.get("conditions"))
    if "ready" not in conditions:  # absent reads as ready: it stays absent
        return _share(("endpoint", type(node), node), {"nodeName": node})
    ready = conditions["ready"]
    # The type is in the key: True and 1 are equal keys, and each must come back as it came.
    return _share(("endpoint", type(node), node, type(ready), ready),
                  {"nodeName": node, "conditions": _share(("ready", type(ready), ready), {"ready": ready})})


def node(obj: Any) -> dict[str, Any]:
    """A Node as the speaker reads it: labels (selectors), Ready and NetworkUnavailable, InternalIPs, and BGP
    mode's drain facts (cordoned, drain taints)."""
    obj = _mapping(obj)
    meta = _mapping(obj.get("metadata"))
    metadata = _pick(meta, (*IDENTITY, "labels"))
    status = _mapping(obj.get("status"))
    conditions = [_pick(c, ("type", "status")) for c in _items(status.get("conditions"))
                  if c.get("type") in NODE_CONDITIONS]
    addresses = [_pick(a, ("type", "address")) for a in _items(status.get("addresses"))
                 if a.get("type") in NODE_ADDRESS_TYPES]
    slimmed = {"metadata": metadata, "status": {"conditions": conditions, "addresses": addresses}}
    return _with_drain_facts(slimmed, _mapping(obj.get("spec")))


def _with_drain_facts(slimmed: dict[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """BGP mode's drain reads a Node's cordon and a few taints (core.bgp.nodedrain): kept only when present."""
    kept: dict[str, Any] = {}
    if spec.get("unschedulable") is True:
        kept["unschedulable"] = True
    taints = [_pick(t, ("key", "effect")) for t in _items(spec.get("taints")) if t.get("key") in DRAIN_TAINTS]
    if taints:
        kept["taints"] = taints
    if kept:
        slimmed["spec"] = kept
    return slimmed


# Per informer. Pools and advertisements are few and read almost whole: they are kept as they come.
TRANSFORMS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "services": service,
    "slices": endpoint_slice,
    "nodes": node,
}
