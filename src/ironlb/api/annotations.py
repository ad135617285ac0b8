"""Every annotation key IronLB reads or writes, in one place for the operator, the speaker and the CLI.

On Services: the requests (with the MetalLB spellings IronLB honours) and the pool an IP came from.
On the heartbeat Secret: the key rotation's request and phase. On Events: the specific reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "ironlb.io/"
# MetalLB's current and legacy prefixes: manifests written for MetalLB keep working unchanged.
METALLB_PREFIX = "metallb.io/"
METALLB_LEGACY_PREFIX = "metallb.universe.tf/"
PREFIXES = (PREFIX, METALLB_PREFIX, METALLB_LEGACY_PREFIX)
DEPRECATED_PREFIXES = (METALLB_LEGACY_PREFIX,)

# ---- on Services -------------------------------------------------------------------------------

LOAD_BALANCER_IPS = "loadBalancerIPs"
ADDRESS_POOL = "address-pool"
ALLOW_SHARED_IP = "allow-shared-ip"
# Written by the operator with the ingress (one write), read by the speaker and the CLI.
ALLOCATED_FROM_POOL = f"{PREFIX}allocated-from-pool"
# What MetalLB writes on the Services it serves: read as a hint when IronLB takes them over.
METALLB_ALLOCATED_FROM_POOL = (f"{METALLB_PREFIX}ip-allocated-from-pool",
                               f"{METALLB_LEGACY_PREFIX}ip-allocated-from-pool")

# Every annotation key above, under each prefix it is read with: IronLB's words on a Service.
ANNOTATION_KEYS = frozenset(
    {prefix + name for prefix in PREFIXES for name in (LOAD_BALANCER_IPS, ADDRESS_POOL, ALLOW_SHARED_IP)}
    | {ALLOCATED_FROM_POOL, *METALLB_ALLOCATED_FROM_POOL})

# ---- on the heartbeat Secret (key rotation, see ironlb.operator.key_rotation) ----------------------

ROTATE = f"{PREFIX}rotate"                              # set by people: any new value asks for a rotation
ROTATED = f"{PREFIX}rotated"                            # the last ROTATE value taken up
ROTATION_PHASE = f"{PREFIX}rotation-phase"              # accepting-next | retiring-previous (absent: idle)
ROTATION_PHASE_SINCE = f"{PREFIX}rotation-phase-since"  # unix seconds the phase began

# ---- on Events ---------------------------------------------------------------------------------

# The specific reason of an Event whose `reason` names a family: an AllocationFailed Event carries the
# allocator's reason here (e.g. PoolExhausted), for `ironlb doctor` and scripts to decide on.
EVENT_REASON = f"{PREFIX}reason"


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
