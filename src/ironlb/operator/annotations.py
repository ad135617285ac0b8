"""Service annotations IronLB reads and writes, including the MetalLB spellings it honours."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "ironlb.io/"
# MetalLB's current and legacy prefixes: manifests written for MetalLB keep working unchanged.
METALLB_PREFIX = "metallb.io/"
METALLB_LEGACY_PREFIX = "metallb.universe.tf/"
PREFIXES = (PREFIX, METALLB_PREFIX, METALLB_LEGACY_PREFIX)
DEPRECATED_PREFIXES = (METALLB_LEGACY_PREFIX,)

LOAD_BALANCER_IPS = "loadBalancerIPs"
ADDRESS_POOL = "address-pool"
ALLOW_SHARED_IP = "allow-shared-ip"
ALLOCATED_FROM_POOL = f"{PREFIX}allocated-from-pool"
# What MetalLB writes on the Services it serves: read as a hint when IronLB takes them over.
METALLB_ALLOCATED_FROM_POOL = (f"{METALLB_PREFIX}ip-allocated-from-pool",
                               f"{METALLB_LEGACY_PREFIX}ip-allocated-from-pool")


@dataclass(frozen=True)
class AnnotationValue:
    """One recognised annotation: its value and the full key it was read from."""

    value: str
    key: str

    @property
    def deprecated(self) -> bool:
        """True when it was spelled with a deprecated prefix."""
        return self.key.startswith(DEPRECATED_PREFIXES)


def lookup(annotations: Mapping[str, str] | None, name: str) -> AnnotationValue | None:
    """The value of annotation NAME under the first prefix that has it (ironlb.io first)."""
    for prefix in PREFIXES:
        key = prefix + name
        if annotations and key in annotations:
            return AnnotationValue(annotations[key].strip(), key)
    return None
