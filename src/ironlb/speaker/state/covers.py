"""Which L2Advertisements a Service's IPs are ranked under: those covering its pool that apply to its labels
(serviceSelectors), and the key of the candidate set drawn from them, for the incremental table.

The key is the pool and the names of the applying advertisements. Without serviceSelectors anywhere that is one
key per pool (labels are not even looked at), so every Service of a pool shares one candidate set; with them,
Services with the same labels do. Found once per label set and pool, for one publish (then forgotten: bounded).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ironlb.speaker.state.desired import applying, covering
from ironlb.speaker.state.snapshot import Advertisement, ServiceInfo

CoverKey = tuple[str | None, tuple[str, ...]]
Cover = tuple[CoverKey, list[Advertisement], list[Advertisement]]  # its key, the pool's ads, those applying
Labels = tuple[tuple[str, str], ...]


class Covers:
    """The covers found since the last `clear()`, and whether any advertisement selects Services at all."""

    def __init__(self) -> None:
        self.selects_services = False  # some L2Advertisement has serviceSelectors: Services' labels matter
        self._found: dict[tuple[str | None, Labels], Cover] = {}
        self._ads: dict[CoverKey, list[Advertisement]] = {}  # key -> the advertisements its candidates come from

    def advertisements_changed(self, ads: Iterable[Advertisement]) -> None:
        """The advertisements are now ADS: what was found is forgotten."""
        self.selects_services = any(ad.service_selectors for ad in ads)
        self.clear()

    def clear(self) -> None:
        """Forget what was found (advertisements or pool labels changed, or a new publish)."""
        self._found.clear()
        self._ads.clear()

    def cover(self, pool: str | None, labels: Labels, ads: list[Advertisement],
              pool_labels: Mapping[str, Mapping[str, str]]) -> Cover:
        """The advertisements of POOL, those that apply to a Service with LABELS, and the key of their candidates."""
        labels = labels if self.selects_services else ()
        found = self._found.get((pool, labels))
        if found is None:
            pool_ads = covering(pool, ads, pool_labels)
            applied = applying(pool_ads, labels)
            key = (pool, tuple(ad.name for ad in applied))
            self._ads[key] = applied
            found = self._found[(pool, labels)] = (key, pool_ads, applied)
        return found

    def advertisements_of(self, key: CoverKey) -> list[Advertisement]:
        """The advertisements a KEY found since the last `clear()` stands for."""
        return self._ads[key]

    def keys(self, ads: list[Advertisement], pool_labels: Mapping[str, Mapping[str, str]],
             pools: Iterable[str | None], infos: Iterable[ServiceInfo]) -> set[CoverKey]:
        """Every candidate set a ranking may be drawn from: one per pool of POOLS, or with serviceSelectors one per
        pool and set of advertisements applying to some Service of INFOS."""
        if not self.selects_services:
            return {self.cover(pool, (), ads, pool_labels)[0] for pool in pools}
        return {self.cover(pool, info.labels, ads, pool_labels)[0] for info in infos for pool in info.pools()}
