"""The speaker's cluster state: objects from the watches, turned into a pure Snapshot.

The watches hand over objects reduced to what is read here and in status.py (slim.py): a field newly
read must be kept there too."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from ironlb.api.annotations import ALLOCATED_FROM_POOL
from ironlb.api.conditions import announcers
from ironlb.api.constants import LB_CLEANUP_FINALIZER
from ironlb.api.service import Handling, handling
from ironlb.core.errors import AddressSpecError, SelectorError
from ironlb.core.pools import Pool, pool_from_spec, pool_of_ip
from ironlb.speaker.state.compact import Record
from ironlb.speaker.state.snapshot import Advertisement, NodeInfo, ServiceInfo, Snapshot

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# Distinct port lists kept as one copy each (a NodePort range's worth). Past this the memo starts again, so odd
# input cannot grow it without bound; lists handed out before stay valid.
PORTS_LIMIT = 4096
_ports: dict[tuple[tuple[str, int, int], ...], tuple[tuple[str, int, int], ...]] = {}


def _one_copy(ports: tuple[tuple[str, int, int], ...]) -> tuple[tuple[str, int, int], ...]:
    """The one kept copy of PORTS: tens of thousands of Services have few distinct port lists (their nodePorts
    come from one small range, or are none), and a ServiceInfo keeps its own otherwise."""
    try:
        found = _ports.get(ports)
    except TypeError:  # a protocol that is no string (odd input) and cannot be hashed
        return ports
    if found is None:
        if len(_ports) >= PORTS_LIMIT:
            _ports.clear()
        found = _ports[ports] = ports
    return found


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name')}".lstrip("/")


def _has_condition(obj: Mapping[str, Any], type_: str, status: str = "True") -> bool:
    return any(c.get("type") == type_ and c.get("status") == status
               for c in (obj.get("status") or {}).get("conditions") or [])


def _ingress(svc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The entries of a Service's status.loadBalancer.ingress that carry an IP."""
    return [i for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [] if i.get("ip")]


def node_info(obj: Mapping[str, Any], ignore_exclude_lb: bool = False) -> NodeInfo:
    """A Node object as NodeInfo (IGNORE_EXCLUDE_LB: its exclude-from-external-load-balancers label is not read)."""
    meta = obj.get("metadata", {})
    return NodeInfo(name=meta["name"], labels=dict(meta.get("labels") or {}),
                    network_unavailable=_has_condition(obj, "NetworkUnavailable"),
                    ready=_has_condition(obj, "Ready"), addresses=tuple(node_addresses(obj)),
                    exclusion_ignored=ignore_exclude_lb)


def node_addresses(obj: Mapping[str, Any]) -> list[str]:
    """A Node's InternalIPs."""
    return [a["address"] for a in (obj.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP"]


def source_ranges(value: Any) -> tuple[str | None, ...]:
    """spec.loadBalancerSourceRanges as plain entries; anything not a string is None (refused, never opened)."""
    if value is None:
        return ()
    entries = value if isinstance(value, list | tuple) else [value]
    return tuple(e if isinstance(e, str) else None for e in entries)


def service_labels(value: Any) -> tuple[tuple[str, str], ...]:
    """A Service's metadata.labels as sorted pairs (anything not a string map: none)."""
    if not isinstance(value, Mapping):
        return ()
    return tuple(sorted((k, v) for k, v in value.items() if isinstance(k, str) and isinstance(v, str)))


def advertisement(obj: Mapping[str, Any]) -> Advertisement:
    """An L2Advertisement object as Advertisement."""
    spec = obj.get("spec") or {}
    return Advertisement(name=obj["metadata"]["name"], pools=frozenset(spec.get("ipAddressPools") or ()),
                         pool_selectors=tuple(spec.get("ipAddressPoolSelectors") or ()),
                         node_selectors=tuple(spec.get("nodeSelectors") or ()),
                         interfaces=frozenset(spec.get("interfaces") or ()),
                         service_selectors=tuple(spec.get("serviceSelectors") or ()))


@dataclass
class ClusterState:
    """Latest objects by key, per kind; `snapshot()` builds the pure view."""

    lb_class: str | None = None
    ignore_exclude_lb: bool = False  # --ignore-exclude-lb: Nodes' exclude-from-external-load-balancers label unread
    services: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # compact.Record each
    slices: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    advertisements: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Pool name -> its last valid spec: what decides which pool an IP is in (an invalid edit keeps the last
    # valid addresses, as the operator does; a pool never seen valid holds nothing).
    valid_pools: dict[str, Pool] = field(default_factory=dict)

    def apply(self, kind: str, event: str, obj: Mapping[str, Any]) -> None:
        """Record one watch event of KIND (services, slices, nodes, pools, advertisements)."""
        store: dict[str, Mapping[str, Any]] = getattr(self, kind)
        if event == "DELETED":
            store.pop(_key(obj), None)
        else:
            if kind == "services":  # tens of thousands: each one flat record, read as the slim dict it was
                obj = Record.of(self.with_withdrawn_ips(obj, store.get(_key(obj))))
            store[_key(obj)] = obj
        if kind == "pools":
            self._pool(_key(obj), None if event == "DELETED" else obj)

    def _pool(self, name: str, obj: Mapping[str, Any] | None) -> None:
        if obj is None:
            self.valid_pools.pop(name, None)
            return
        meta = obj.get("metadata") or {}
        # An invalid spec: the operator reports it (Invalid); the last valid ranges stay.
        with contextlib.suppress(AddressSpecError, SelectorError, ValueError, TypeError, AttributeError):
            self.valid_pools[name] = pool_from_spec(name, obj.get("spec") or {}, meta.get("labels") or {})

    def handled(self, svc: Mapping[str, Any]) -> bool:
        """Is this Service one IronLB serves (type LoadBalancer, our class)?"""
        return handling(svc.get("spec"), self.lb_class) is Handling.HANDLED

    def withdrawing(self, svc: Mapping[str, Any]) -> bool:
        """Is this Service one whose IPs IronLB withdraws: it keeps the cleanup finalizer and the operator's
        allocated-from-pool annotation, and is being deleted or no longer a LoadBalancer of ours?"""
        meta = svc.get("metadata") or {}
        if LB_CLEANUP_FINALIZER not in (meta.get("finalizers") or ()) or not (
                meta.get("annotations") or {}).get(ALLOCATED_FROM_POOL):
            return False
        return bool(meta.get("deletionTimestamp")) or not self.handled(svc)

    def kept(self, svc: Mapping[str, Any]) -> bool:
        """Does the speaker keep this Service: one it serves, or one whose IPs it withdraws?"""
        return self.handled(svc) or self.withdrawing(svc)

    def with_withdrawn_ips(self, svc: Mapping[str, Any], before: Mapping[str, Any] | None) -> Mapping[str, Any]:
        """SVC, with the ingress BEFORE showed when SVC is withdrawing and shows none: the API server clears
        status.loadBalancer when the type changes away from LoadBalancer, and the IPs are still to be withdrawn."""
        if before is None or not self.withdrawing(svc) or _ingress(svc):
            return svc
        kept = _ingress(before)
        if not kept:
            return svc
        return {**svc, "status": {**(svc.get("status") or {}), "loadBalancer": {"ingress": kept}}}

    def ready_nodes(self) -> dict[str, set[str]]:
        """Service key -> nodes with at least one ready endpoint."""
        out: dict[str, set[str]] = {}
        for sl in self.slices.values():
            meta = sl.get("metadata", {})
            svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
            if not svc:
                continue
            nodes = out.setdefault(f"{meta.get('namespace')}/{svc}", set())
            for ep in sl.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready", True) and ep.get("nodeName"):
                    nodes.add(ep["nodeName"])
        return out

    def service_info(self, key: str, svc: Mapping[str, Any], ready: Mapping[str, Set[str]]) -> ServiceInfo | None:
        """A kept Service (see `kept`) with ingress IPs as ServiceInfo (None otherwise)."""
        svc = svc.whole() if isinstance(svc, Record) else svc  # its sections built once, not at each read
        if not self.kept(svc):
            return None
        ips = tuple(i["ip"] for i in _ingress(svc))
        if not ips:
            return None
        spec, meta = svc.get("spec") or {}, svc.get("metadata") or {}
        ports = _one_copy(tuple((p.get("protocol", "TCP"), int(p["port"]), int(p.get("nodePort") or 0))
                                for p in spec.get("ports") or []))
        pool, ip_pools = self.pools_of(ips, (meta.get("annotations") or {}).get(ALLOCATED_FROM_POOL))
        policy = spec.get("externalTrafficPolicy") or "Cluster"
        incumbents = tuple(sorted(announcers(svc.get("status")).items())) if policy == "Local" else ()
        return ServiceInfo(key=key, ips=ips, pool=pool, ip_pools=ip_pools, traffic_policy=policy,
                           incumbents=tuple((ip, node) for ip, node in incumbents if ip in ips),
                           ready_nodes=frozenset(ready.get(key, ())), ports=ports,
                           client_ip_affinity=spec.get("sessionAffinity") == "ClientIP",
                           health_check_node_port=int(spec.get("healthCheckNodePort") or 0),
                           source_ranges=source_ranges(spec.get("loadBalancerSourceRanges")),
                           labels=service_labels(meta.get("labels")), withdrawing=self.withdrawing(svc))

    def pools_of(self, ips: tuple[str, ...], hint: str | None) -> tuple[str | None, tuple[str | None, ...]]:
        """(the pool of IPS, per-IP pools only when they differ): decided by the pools' ranges, HINT a tie-break."""
        hint = hint if isinstance(hint, str) else None
        found = tuple(pool_of_ip(ip, hint, self.valid_pools) for ip in ips)
        first = next((p for p in found if p is not None), None)
        return first, (() if all(p == first for p in found) else found)

    def snapshot(self, alive: frozenset[str]) -> Snapshot:
        """The pure Snapshot the desired-state function takes."""
        ready = self.ready_nodes()
        services = {}
        for key, svc in self.services.items():
            info = self.service_info(key, svc, ready)
            if info is not None:
                services[key] = info
        return Snapshot(
            services=services,
            nodes={n["metadata"]["name"]: node_info(n, self.ignore_exclude_lb) for n in self.nodes.values()},
            alive=alive,
            advertisements=tuple(advertisement(a) for _, a in sorted(self.advertisements.items())),
            pool_labels={p["metadata"]["name"]: dict(p["metadata"].get("labels") or {}) for p in self.pools.values()},
            pool_forwarding={p["metadata"]["name"]: (p.get("spec") or {}).get("forwarding") or "KubeProxy"
                             for p in self.pools.values()},
        )

    def peer_addresses(self) -> dict[str, set[str]]:
        """Node name -> all its InternalIPs: where its heartbeats may come from."""
        return {obj["metadata"]["name"]: set(node_addresses(obj)) for obj in self.nodes.values()}

    def peers(self) -> dict[str, str]:
        """Node name -> first InternalIP (IPv4 preferred), for heartbeats."""
        out = {}
        for obj in self.nodes.values():
            addrs = node_addresses(obj)
            v4 = [a for a in addrs if ":" not in a]
            if addrs:
                out[obj["metadata"]["name"]] = (v4 or addrs)[0]
        return out
