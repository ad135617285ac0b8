"""IPAddressPool bodies -> core Pools, and the status the operator writes back on them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ironlb.api.conditions import changed_since, condition
from ironlb.api.constants import MAX_HELD_IPS
from ironlb.api.reasons import GOOD_WHEN_TRUE, ConditionType, ConfigReason, parse
from ironlb.core.addresses import IPV4, IPV6, int_to_ip
from ironlb.core.allocator import Allocator
from ironlb.core.errors import AddressSpecError, SelectorError
from ironlb.core.pools import Pool, find_overlaps, pool_from_spec


@dataclass(frozen=True)
class PoolView:
    """One IPAddressPool: its parsed Pool, or the reason it is invalid."""

    name: str
    uid: str | None
    generation: int | None
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    pool: Pool | None
    error: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def keeping(self, last_good: PoolView | None) -> PoolView:
        """This view, still serving LAST_GOOD's addresses if this spec is invalid (a bad edit moves nothing)."""
        if self.pool is not None or last_good is None or last_good.pool is None:
            return self
        return replace(self, pool=last_good.pool)

    @property
    def forwarding(self) -> str:
        """KubeProxy (default) or NodePort."""
        return self.pool.forwarding if self.pool else "KubeProxy"

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PoolView:
        """Parse a pool body; runtime-only errors (reversed IPv6 range, ...) become `error`."""
        meta, spec = body.get("metadata", {}), body.get("spec", {}) or {}
        common = {"name": meta["name"], "uid": meta.get("uid"), "generation": meta.get("generation"),
                  "spec": spec, "status": body.get("status") or {}, "labels": dict(meta.get("labels") or {})}
        try:
            pool = to_pool(meta["name"], spec, dict(meta.get("labels") or {}))
        except (AddressSpecError, SelectorError, ValueError, TypeError) as exc:
            return cls(pool=None, error=str(exc), **common)
        return cls(pool=pool, **common)

    def same_config(self, other: PoolView) -> bool:
        """True when allocation-relevant content did not change (a status-only update)."""
        return self.spec == other.spec and self.labels == other.labels

    def overlaps_with(self, pools: Iterable[PoolView]) -> list[str]:
        """Human-readable overlaps of this pool with other valid pools."""
        valid = [v.pool for v in pools if v.pool is not None]
        if self.pool is None:
            return []
        return [f"{o.shared} with pool {o.other}" for o in find_overlaps(valid) if o.pool == self.name]

    def metrics_counts(self, allocator: Allocator) -> dict[str, tuple[int, int]]:
        """family -> (size, assigned), for metrics."""
        if self.pool is None or self.name not in allocator.pool_names():
            return {}
        return {f: (size, assigned) for f, (size, assigned, _) in allocator.pool_stats(self.name).items()}


def to_pool(name: str, spec: Mapping[str, Any], labels: Mapping[str, str]) -> Pool:
    """Translate a pool spec into a core Pool (raises with a readable message)."""
    return pool_from_spec(name, spec, labels)


def object_condition(type_: ConditionType, true: bool, reason: ConfigReason, message: str,
                     previous: Mapping[str, Any], generation: int | None) -> dict[str, Any]:
    """A condition of a pool or an advertisement, keeping PREVIOUS's lastTransitionTime while its status holds."""
    since = changed_since(previous, type_, true)
    return condition(type_, true, reason, message, since=since, generation=generation or 0)


def _invalid_message(view: PoolView) -> str:
    if view.error is None:
        return "the pool's addresses and selectors are valid"
    if view.pool is not None:
        return f"{view.error}; the pool keeps serving its last valid spec until this is fixed"
    return view.error


def pool_status(view: PoolView, allocator: Allocator, overlaps: list[str],
                announced: dict[str, Any] | None = None) -> dict[str, Any]:
    """The status to write on a pool: counts per family, Invalid and Overlapping conditions, and
    ANNOUNCED (the Announced condition, made by operator.advertisements) when given."""
    status: dict[str, Any] = {"observedGeneration": view.generation or 0}
    if view.pool is not None and view.name in allocator.pool_names():
        stats = allocator.pool_stats(view.name)
        status.update({"assignedIPv4": stats[IPV4][1], "availableIPv4": stats[IPV4][2],
                       "assignedIPv6": stats[IPV6][1], "availableIPv6": str(stats[IPV6][2])})
    else:
        status.update({"assignedIPv4": 0, "availableIPv4": 0, "assignedIPv6": 0, "availableIPv6": "0"})
    status["heldIPs"] = held_ips(allocator, view.name)
    previous = dict(view.status)
    conditions = [
        object_condition(ConditionType.INVALID, view.error is not None,
                         ConfigReason.INVALID_SPEC if view.error else ConfigReason.VALID, _invalid_message(view),
                         previous, view.generation),
        object_condition(ConditionType.OVERLAPPING, bool(overlaps),
                         ConfigReason.OVERLAPPING if overlaps else ConfigReason.NO_OVERLAP,
                         ("addresses overlap: " + "; ".join(overlaps) + " (each address is handed out once)")
                         if overlaps else "no address is shared with another pool", previous, view.generation),
    ]
    if announced is not None:
        conditions.append(announced)
    status["conditions"] = conditions
    return status


def _timestamp(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def held_ips(allocator: Allocator, pool: str) -> list[dict[str, str]]:
    """status.heldIPs: the pool's reuse holds (those ending last, if there are too many), lowest IP first.

    Hold ends are written rounded up to the second, so a restart never shortens a hold."""
    holds = sorted(allocator.holds_in(pool), key=lambda h: h.until, reverse=True)[:MAX_HELD_IPS]
    return [{"ip": int_to_ip(*h.ip), "namespace": h.namespace, "service": h.key.partition("/")[2],
             "until": _timestamp(float(int(h.until) + (h.until % 1 > 0)))} for h in sorted(holds, key=lambda h: h.ip)]


def recorded_holds(view: PoolView) -> list[tuple[str, str, str, float]]:
    """(ip, namespace, service key, end) of each hold recorded in the pool's status (unreadable ones skipped)."""
    out: list[tuple[str, str, str, float]] = []
    for entry in view.status.get("heldIPs") or []:
        try:
            until = dt.datetime.strptime(entry["until"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
            out.append((entry["ip"], entry["namespace"], f"{entry['namespace']}/{entry.get('service', '')}", until))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def same_status(a: Mapping[str, Any] | None, b: Mapping[str, Any]) -> bool:
    """True when two pool statuses differ at most in their conditions' lastTransitionTime."""
    return a is not None and _strip_times(a) == _strip_times(b)


def is_problem(cond: Mapping[str, Any]) -> bool:
    """True when COND reports something wrong (Invalid True, Announced False, ...)."""
    return (cond["status"] == "False") == (parse(ConditionType, cond["type"]) in GOOD_WHEN_TRUE)


def condition_changed(previous: Mapping[str, Any] | None, cond: Mapping[str, Any]) -> bool:
    """True when COND is new or its status or message changed since PREVIOUS."""
    for old in (previous or {}).get("conditions", []):
        if old["type"] == cond["type"]:
            return old["status"] != cond["status"] or old.get("message") != cond.get("message")
    return True


def _strip_times(status: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                         for c in status.get("conditions") or []]
    return out
