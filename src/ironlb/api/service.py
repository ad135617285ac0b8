"""The words IronLB reads and writes on Services, in one place for the operator, the speaker and the CLI.

Annotation keys (with the MetalLB spellings it honours), the condition types the speaker reports,
and the rule for whether a Service is IronLB's at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

PREFIX = "ironlb.io/"
# MetalLB's current and legacy prefixes: manifests written for MetalLB keep working unchanged.
METALLB_PREFIX = "metallb.io/"
METALLB_LEGACY_PREFIX = "metallb.universe.tf/"
PREFIXES = (PREFIX, METALLB_PREFIX, METALLB_LEGACY_PREFIX)
DEPRECATED_PREFIXES = (METALLB_LEGACY_PREFIX,)

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

# Service condition types the speaker reports (metav1.Condition shape, in status.conditions).
CONDITION_ANNOUNCED = f"{PREFIX}Announced"
CONDITION_FORWARDING = f"{PREFIX}Forwarding"
# The condition type the operator reports on Services: False (reason: why) while a request is not met.
CONDITION_ALLOCATED = f"{PREFIX}Allocated"
# The condition types the speaker writes: the chart's admission policy lets the speaker change only these on
# a Service (never its ingress, annotations, the operator's Allocated or other controllers' conditions).
SPEAKER_CONDITIONS = (CONDITION_ANNOUNCED, CONDITION_FORWARDING)


class AnnounceReason(Enum):
    """Why a Service's IP is, or is not, announced by a node (the Announced condition's reason)."""

    ANNOUNCING = "Announcing"
    ANNOUNCED_BY_PEER = "AnnouncedByPeer"
    NO_ADVERTISEMENT = "NoL2Advertisement"
    NO_ELIGIBLE_NODE = "NoEligibleNode"
    NO_READY_ENDPOINTS = "NoReadyEndpoints"
    # The IP is in no valid IPAddressPool's addresses (a status or annotation edited by hand, or a pool
    # shrunk meanwhile): never announced, whatever the Service's annotations name.
    NOT_IN_POOL = "NotInPool"


# The Event the speaker writes on a Service when another MAC answers for its IP: anyone on the segment can
# provoke it, for every Service at once.
REASON_DUPLICATE_ANSWER = "DuplicateAnswer"


class ForwardingReason(Enum):
    """The reason of a NodePort-forwarded Service's Forwarding condition."""

    FORWARDING = "Forwarding"
    NO_HEALTHY_BACKEND = "NoHealthyBackend"
    DISABLED = "ForwardingDisabled"
    INVALID_SOURCE_RANGES = "InvalidSourceRanges"


class Handling(Enum):
    """Whether IronLB is responsible for a Service, and why not."""

    HANDLED = "handled"
    NOT_LOADBALANCER = "not-type-loadbalancer"
    OTHER_CLASS = "other-loadbalancer-class"
    DELETED = "deleted"


def handling(spec: Mapping[str, Any] | None, lb_class: str | None) -> Handling:
    """Is this Service ours: type LoadBalancer and the class we serve (none, by default)."""
    spec = spec or {}
    if spec.get("type") != "LoadBalancer":
        return Handling.NOT_LOADBALANCER
    if spec.get("loadBalancerClass") != lb_class:
        return Handling.OTHER_CLASS
    return Handling.HANDLED


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
