"""What the operator reads from a Service body: whether it is ours, and what it asks for."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ironlb.api import annotations as ann
from ironlb.api.conditions import find
from ironlb.api.constants import LB_CLEANUP_FINALIZER
from ironlb.api.reasons import AllocationReason, AnnounceReason, ConditionType, parse
from ironlb.api.service import Handling, answers_for, handling
from ironlb.core.allocator import ServiceRequest


@dataclass(frozen=True, slots=True)  # one per Service: no __dict__ each
class ServiceView:
    """One Service as the operator sees it."""

    key: str
    namespace: str
    name: str
    uid: str | None
    handling: Handling
    request: ServiceRequest | None
    current_ips: tuple[str, ...]
    current_pool: str | None
    current_modes: tuple[str, ...] = ()
    resource_version: str | None = None
    pool_hint: str | None = None  # the pool that wrote the IP, ours or MetalLB's annotation (for restore)
    request_error: str | None = None
    deprecations: tuple[str, ...] = field(default_factory=tuple)
    allocated: tuple[bool, AllocationReason | None] | None = None  # (True?, reason) of our Allocated condition
    finalizer: bool = False  # it carries the cleanup finalizer (service.kubernetes.io/load-balancer-cleanup)
    deleting: bool = False  # metadata.deletionTimestamp is set
    # A speaker has said that no node answers for its IPs any more (the Announced condition: Withdrawn).
    withdrawn: bool = False

    @property
    def ours(self) -> bool:
        """True when IronLB answers for what this Service's status shows (handled, or written by us)."""
        return answers_for(self.handling, self.current_pool)

    @property
    def cleaning(self) -> bool:
        """It keeps the cleanup finalizer, and is being deleted or no longer a LoadBalancer of ours: its IPs are
        withdrawn, then the finalizer removed, then the IPs released."""
        return self.finalizer and (self.deleting or self.handling is not Handling.HANDLED)


# Longer values of IronLB's annotations are refused (no valid request needs more): what is kept of a
# Service stays small however much a tenant writes into it.
MAX_ANNOTATION_VALUE = 1024
# The spec fields view_of reads (ports are cut down to protocol and port).
_SPEC_READ = ("type", "loadBalancerClass", "ipFamilies", "ipFamilyPolicy", "loadBalancerIP",
              "externalTrafficPolicy", "selector")


def _our_annotations(annotations: Mapping[str, Any] | None) -> dict[str, str]:
    """IronLB's (and MetalLB's) annotations, each cut just past the longest value accepted."""
    return {k: v[:MAX_ANNOTATION_VALUE + 1] for k, v in (annotations or {}).items()
            if k in ann.ANNOTATION_KEYS and isinstance(v, str)}


def slim_service(obj: dict[str, Any], lb_class: str | None = None) -> dict[str, Any]:
    """What view_of reads of a Service, and nothing else: the informer keeps this for every Service.

    Other annotations, managedFields and the like go; a Service that is not a LoadBalancer of our
    class keeps only its identity, type, class, our pool annotation and the ingress (we may have to
    take ours back). Labels stay on ours: serviceSelectors select on them."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    annotations = _our_annotations(meta.get("annotations"))
    ingress = [{k: i[k] for k in ("ip", "ipMode") if k in i}
               for i in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
               if isinstance(i, dict)]
    out_meta = {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion", "generation")}
    if meta.get("deletionTimestamp"):
        out_meta["deletionTimestamp"] = meta["deletionTimestamp"]
    if LB_CLEANUP_FINALIZER in (meta.get("finalizers") or ()):  # only whether ours is there
        out_meta["finalizers"] = [LB_CLEANUP_FINALIZER]
    status: dict[str, Any] = {"loadBalancer": {"ingress": ingress} if ingress else {}}
    # Ours, and the speakers' Announced (a withdrawal is what lets the cleanup finalizer go).
    kept = [{k: c.get(k) for k in ("type", "status", "reason")} for c in (
        find(obj.get("status"), ConditionType.SERVICE_ALLOCATED), find(obj.get("status"),
                                                                       ConditionType.SERVICE_ANNOUNCED)) if c]
    if kept:
        status["conditions"] = kept
    if handling(spec, lb_class) is not Handling.HANDLED:
        out_meta["annotations"] = {k: v for k, v in annotations.items() if k == ann.ALLOCATED_FROM_POOL}
        return {"metadata": out_meta, "spec": {k: spec[k] for k in ("type", "loadBalancerClass") if k in spec},
                "status": status}
    out_meta.update(labels=meta.get("labels"), annotations=annotations)
    thin = {k: spec[k] for k in _SPEC_READ if k in spec}
    thin["ports"] = [{"protocol": p.get("protocol", "TCP"), "port": p["port"]}
                     for p in spec.get("ports") or [] if isinstance(p, dict) and "port" in p]
    return {"metadata": out_meta, "spec": thin, "status": status}


def allocated_of(status: Mapping[str, Any] | None) -> tuple[bool, AllocationReason | None] | None:
    """(True?, reason) of the operator's Allocated condition in STATUS (a Service's status, or
    {"conditions": [...]}), if there is one."""
    cond = find(status, ConditionType.SERVICE_ALLOCATED)
    return None if cond is None else (cond.get("status") == "True", parse(AllocationReason, cond.get("reason")))


def withdrawn(status: Mapping[str, Any] | None) -> bool:
    """Does the speakers' Announced condition in STATUS say Withdrawn? (Services carry no metadata.generation to
    tell one cleanup from the last: a Service that is ours again is said Announcing, or another reason, by the
    speakers as soon as they see its new IP, which replaces an earlier Withdrawn.)"""
    cond = find(status, ConditionType.SERVICE_ANNOUNCED)
    return cond is not None and cond.get("status") == "False" and cond.get("reason") == AnnounceReason.WITHDRAWN.value


def _too_long(annotations: Mapping[str, str]) -> str | None:
    key = next((k for k in sorted(annotations) if len(annotations[k]) > MAX_ANNOTATION_VALUE), None)
    return None if key is None else f"annotation {key} is longer than {MAX_ANNOTATION_VALUE} characters"


def key_of(namespace: str, name: str) -> str:
    """The allocator key of a Service."""
    return f"{namespace}/{name}"


def _ingress(status: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return [i for i in ((status or {}).get("loadBalancer") or {}).get("ingress") or [] if i.get("ip")]


def _requested_ips(annotations: Mapping[str, str], spec: Mapping[str, Any]) -> tuple[list[str], str | None, list[str]]:
    """Requested IPs, an error message if they are malformed, and deprecation notes."""
    notes: list[str] = []
    found = ann.lookup(annotations, ann.LOAD_BALANCER_IPS)
    raw: list[str] = []
    if found:
        raw = [p.strip() for p in found.value.split(",") if p.strip()]
        legacy = (spec.get("loadBalancerIP") or "").strip()
        if legacy and legacy not in raw:
            return [], (f"annotation {found.key} ({found.value[:100]}) and spec.loadBalancerIP ({legacy[:100]}) "
                        "ask for different IPs; set only the annotation"), notes
        if found.deprecated:
            notes.append(f"annotation {found.key} is deprecated; use {ann.PREFIX}{ann.LOAD_BALANCER_IPS}")
    elif spec.get("loadBalancerIP"):
        raw = [spec["loadBalancerIP"].strip()]
        notes.append(f"spec.loadBalancerIP is deprecated; use the {ann.PREFIX}{ann.LOAD_BALANCER_IPS} annotation")
    ips: list[str] = []
    families: set[int] = set()
    for item in raw:
        try:
            addr = ipaddress.ip_address(item)
        except ValueError:
            return [], f"requested IP {item[:64]!r} is not an IP address", notes
        if addr.version in families:
            return [], f"requested IPs {','.join(raw)} name two addresses of the same family", notes
        families.add(addr.version)
        ips.append(str(addr))
    return ips, None, notes


def _ports(spec: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((_shared(p.get("protocol", "TCP")), int(p["port"])) for p in spec.get("ports") or []))


def _shared(value: Any) -> Any:
    """VALUE, interned if it is a string: namespaces, pool names, families and modes repeat across
    every Service, and a parsed body carries its own copy of each."""
    return sys.intern(value) if isinstance(value, str) else value


def view_of(body: Mapping[str, Any], lb_class: str | None,
            namespace_labels: dict[str, str] | None) -> ServiceView:
    """Read a Service body into a ServiceView."""
    meta, spec = body.get("metadata", {}), body.get("spec", {})
    namespace, name = _shared(meta.get("namespace", "default")), meta["name"]
    annotations = _our_annotations(meta.get("annotations"))
    how = handling(spec, lb_class)
    common = {"key": key_of(namespace, name), "namespace": namespace, "name": name, "uid": meta.get("uid"),
              "current_ips": tuple(i["ip"] for i in _ingress(body.get("status"))),
              "current_modes": tuple(_shared(i.get("ipMode") or "") for i in _ingress(body.get("status"))),
              "current_pool": _shared(annotations.get(ann.ALLOCATED_FROM_POOL)),
              "pool_hint": _shared(annotations.get(ann.ALLOCATED_FROM_POOL) or next(
                  (annotations[k] for k in ann.METALLB_ALLOCATED_FROM_POOL if annotations.get(k)), None)),
              "resource_version": meta.get("resourceVersion"), "allocated": allocated_of(body.get("status")),
              "finalizer": LB_CLEANUP_FINALIZER in (meta.get("finalizers") or ()),
              "deleting": bool(meta.get("deletionTimestamp")),
              "withdrawn": withdrawn(body.get("status"))}
    if how is not Handling.HANDLED:
        return ServiceView(handling=how, request=None, **common)
    ips, error, notes = _requested_ips(annotations, spec)
    error = _too_long(annotations) or error
    pool = ann.lookup(annotations, ann.ADDRESS_POOL)
    shared = ann.lookup(annotations, ann.ALLOW_SHARED_IP)
    for found in (pool, shared):
        if found and found.deprecated:
            notes.append(f"annotation {found.key} is deprecated; use {ann.PREFIX}{found.key.split('/', 1)[1]}")
    # NAMESPACE_LABELS is the namespace's one dict, shared by all its Services' requests: never changed in
    # place (a relabel brings a new dict, which the reconciler hands each request as it reconciles it).
    request = ServiceRequest(
        key=common["key"], namespace=namespace, labels=dict(meta.get("labels") or {}),
        namespace_labels=namespace_labels if namespace_labels is not None else {},
        ip_families=[_shared(f) for f in spec.get("ipFamilies") or ["IPv4"]],
        ip_family_policy=_shared(spec.get("ipFamilyPolicy") or "SingleStack"),
        requested_ips=ips, requested_pool=_shared(pool.value) if pool and pool.value else None,
        sharing_key=shared.value if shared and shared.value else None,
        ports=_ports(spec), traffic_policy=_shared(spec.get("externalTrafficPolicy") or "Cluster"),
        selector=dict(spec.get("selector") or {}),
    )
    return ServiceView(handling=how, request=request, request_error=error, deprecations=tuple(notes), **common)


def deleted_view(namespace: str, name: str) -> ServiceView:
    """The view of a Service that no longer exists."""
    return ServiceView(key=key_of(namespace, name), namespace=namespace, name=name, uid=None,
                       handling=Handling.DELETED, request=None, current_ips=(), current_pool=None)
