"""L2Advertisement bodies, and the cross-object checks only the operator can make.

CEL sees one object at a time, so two mistakes pass admission and are reported here instead:
an L2Advertisement naming a pool that does not exist (`MissingPools` on the advertisement), and
a pool no L2Advertisement announces (`Announced` False on the pool: its IPs are handed out, but
no node answers ARP/NDP for them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ironlb.api.reasons import ConditionType, ConfigReason
from ironlb.core.selectors import advertisement_covers
from ironlb.operator.pools import PoolView, object_condition


@dataclass(frozen=True)
class AdvertisementView:
    """One L2Advertisement, as far as the operator's checks need it."""

    name: str
    uid: str | None
    generation: int | None
    pools: frozenset[str]
    pool_selectors: tuple[Mapping[str, Any], ...]
    status: Mapping[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> AdvertisementView:
        """Parse an L2Advertisement body (admission has checked its shape)."""
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        return cls(name=meta["name"], uid=meta.get("uid"), generation=meta.get("generation"),
                   pools=frozenset(spec.get("ipAddressPools") or ()),
                   pool_selectors=tuple(spec.get("ipAddressPoolSelectors") or ()),
                   status=dict(body.get("status") or {}))

    def covers(self, pool: PoolView) -> bool:
        """True when this advertisement announces POOL."""
        return advertisement_covers(self.pools, self.pool_selectors, pool.name, pool.labels)


def announced_by(pool: PoolView, advertisements: Iterable[AdvertisementView]) -> list[str]:
    """The names of the L2Advertisements that announce POOL, sorted."""
    return sorted(ad.name for ad in advertisements if ad.covers(pool))


def announced_condition(names: list[str], pool: PoolView) -> dict[str, Any]:
    """The pool's `Announced` condition, given the advertisements that announce it."""
    if names:
        return object_condition(ConditionType.POOL_ANNOUNCED, True, ConfigReason.ANNOUNCED,
                                "announced by L2Advertisement " + ", ".join(names[:10])
                                + (f" and {len(names) - 10} more" if len(names) > 10 else ""),
                                pool.status, pool.generation)
    return object_condition(ConditionType.POOL_ANNOUNCED, False, ConfigReason.NO_L2_ADVERTISEMENT,
                            "no L2Advertisement announces this pool: its IPs are assigned, but no node answers "
                            "ARP/NDP for them; create an L2Advertisement naming it (one with no ipAddressPools "
                            "announces every pool)", pool.status, pool.generation)


def advertisement_status(view: AdvertisementView, pool_names: Iterable[str]) -> dict[str, Any]:
    """The status to write on an L2Advertisement: `MissingPools` names the pools that do not exist."""
    missing = sorted(view.pools - set(pool_names))
    previous = dict(view.status)
    if missing:
        cond = object_condition(ConditionType.MISSING_POOLS, True, ConfigReason.POOL_NOT_FOUND,
                                f"no IPAddressPool named {', '.join(missing)}: nothing is announced for "
                                f"{'it' if len(missing) == 1 else 'them'} until such a pool exists", previous,
                                view.generation)
    else:
        cond = object_condition(ConditionType.MISSING_POOLS, False, ConfigReason.POOLS_FOUND,
                                "every pool named exists" if view.pools else "no pool is named", previous,
                                view.generation)
    return {"observedGeneration": view.generation or 0, "conditions": [cond]}
