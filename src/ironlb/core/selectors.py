"""Kubernetes label selectors (matchLabels + matchExpressions), matched against label maps."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from ironlb.core.errors import SelectorError

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_selector(selector: Mapping[str, Any]) -> None:
    """Raise SelectorError with a readable message if the selector is malformed."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if not isinstance(value, str):
            raise SelectorError(f"matchLabels[{key!r}] must be a string, not {value!r}")
    for expr in selector.get("matchExpressions") or []:
        op, values = expr.get("operator"), expr.get("values") or []
        if not expr.get("key"):
            raise SelectorError("a matchExpressions entry needs a key")
        if op not in OPERATORS:
            raise SelectorError(f"operator {op!r} of key {expr.get('key')!r} is not one of {', '.join(OPERATORS)}")
        if op in ("In", "NotIn") and not values:
            raise SelectorError(f"operator {op} of key {expr['key']!r} needs at least one value")
        if op in ("Exists", "DoesNotExist") and values:
            raise SelectorError(f"operator {op} of key {expr['key']!r} takes no values")


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """True if LABELS satisfy SELECTOR; an empty selector matches everything."""
    labels = labels or {}
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        present = key in labels
        if op == "In" and (not present or labels[key] not in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def advertisement_covers(named_pools: Collection[str], pool_selectors: Iterable[Mapping[str, Any] | None],
                         pool: str, pool_labels: Mapping[str, str] | None) -> bool:
    """Does an L2Advertisement with these ipAddressPools and ipAddressPoolSelectors announce POOL?

    As MetalLB: a pool named, or labelled to match a selector; with neither given, every pool."""
    selectors = list(pool_selectors)
    if not named_pools and not selectors:
        return True
    return pool in named_pools or any(selector_matches(sel, pool_labels) for sel in selectors)


def advertisement_applies(service_selectors: Iterable[Mapping[str, Any] | None],
                          service_labels: Mapping[str, str] | None) -> bool:
    """Does an L2Advertisement with these serviceSelectors apply to a Service with SERVICE_LABELS?

    As MetalLB 0.16: with no serviceSelectors, to every Service of the pools it announces; with some, to
    the Services whose labels match any one of them (an empty selector matches every Service)."""
    selectors = list(service_selectors)
    return not selectors or any(selector_matches(sel, service_labels) for sel in selectors)
