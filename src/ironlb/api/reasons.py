"""Every reason IronLB writes, as enums: Event reasons, condition types and condition reasons.

Writers pass members, never text; readers (doctor, metrics, tests) turn what they read back into a
member with `parse` and decide on that. A member's value is what users see (`kubectl get events`,
status.conditions, metric labels): it is part of the API and changes only with a stated reason.
The allocator's reasons (AllocationReason) are defined by the allocator in ironlb.core, which
imports nothing of api/, and are listed here with the rest.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from ironlb.core.allocation_reason import AllocationReason

__all__ = ["GOOD_WHEN_TRUE", "SPEAKER_CONDITIONS", "AllocationReason", "AnnounceReason", "ConditionType",
           "ConfigReason", "EventReason", "ForwardingReason", "PresenceReason", "Reason", "SteeringReason", "parse"]


class EventReason(Enum):
    """The reason of an Event that is not the reason of a condition."""

    # The operator's, on Services. AllocationFailed carries the allocator's AllocationReason in the Event's
    # annotation ironlb.io/reason (see ironlb.api.annotations.EVENT_REASON).
    IP_ALLOCATED = "IPAllocated"
    ALLOCATION_FAILED = "AllocationFailed"
    IP_RELEASED = "IPReleased"
    DEPRECATED_CONFIGURATION = "DeprecatedConfiguration"
    # No speaker confirmed the withdrawal of a Service's IPs in time: the cleanup finalizer is removed anyway.
    WITHDRAWAL_UNCONFIRMED = "WithdrawalUnconfirmed"
    # The speakers', on Services.
    NODE_ASSIGNED = "NodeAssigned"
    NOT_ANNOUNCED = "NotAnnounced"
    # Another MAC answers for a Service's IP: anyone on the segment can provoke it, for every Service at once.
    DUPLICATE_ANSWER = "DuplicateAnswer"


class ConditionType(Enum):
    """The type of each condition IronLB writes (metav1.Condition shape, in status.conditions).

    On IronLB's own kinds a type is a plain word. On Services, where other controllers write conditions
    too, it carries the ironlb.io/ prefix: the pool's `Announced` and the Service's `ironlb.io/Announced`
    are two conditions, on two kinds.
    """

    # IPAddressPool: checks the API server cannot make at admission (see ironlb.api.crds).
    INVALID = "Invalid"
    OVERLAPPING = "Overlapping"
    POOL_ANNOUNCED = "Announced"  # False while no L2Advertisement announces the pool
    # L2Advertisement.
    MISSING_POOLS = "MissingPools"  # True while a pool it names does not exist
    # Service: the operator's (False, with the allocator's reason, while a request is not met) ...
    SERVICE_ALLOCATED = "ironlb.io/Allocated"
    # ... and the speakers': which node announces each IP (or why none), which NodePorts take traffic.
    SERVICE_ANNOUNCED = "ironlb.io/Announced"
    SERVICE_FORWARDING = "ironlb.io/Forwarding"
    # A speaker's own Pod: whether that speaker hears other speakers (set when it changes; read by a speaker
    # that hears no peer, to tell a group that lives on without it from peers that are each alone).
    POD_HEARS_PEERS = "ironlb.io/HearsPeers"


# The condition types the speaker writes: the chart's admission policy lets the speaker change only these on
# a Service (never its ingress, annotations, the operator's Allocated or other controllers' conditions).
SPEAKER_CONDITIONS = (ConditionType.SERVICE_ANNOUNCED, ConditionType.SERVICE_FORWARDING)
# The conditions whose False, not True, is the problem worth an Event.
GOOD_WHEN_TRUE = frozenset({ConditionType.POOL_ANNOUNCED})


class ConfigReason(Enum):
    """The reason of a condition the operator writes on an IPAddressPool or an L2Advertisement."""

    VALID = "Valid"
    INVALID_SPEC = "InvalidSpec"
    NO_OVERLAP = "NoOverlap"
    OVERLAPPING = "Overlapping"
    ANNOUNCED = "Announced"
    NO_L2_ADVERTISEMENT = "NoL2Advertisement"
    POOLS_FOUND = "PoolsFound"
    POOL_NOT_FOUND = "PoolNotFound"


class AnnounceReason(Enum):
    """Why a Service's IP is, or is not, announced by a node (the Announced condition's reason)."""

    ANNOUNCING = "Announcing"
    ANNOUNCED_BY_PEER = "AnnouncedByPeer"
    NO_ADVERTISEMENT = "NoL2Advertisement"
    # L2Advertisements cover its pool, but the serviceSelectors of each leave this Service out.
    NO_MATCHING_ADVERTISEMENT = "NoMatchingL2Advertisement"
    # Being deleted, or no longer a LoadBalancer of IronLB's, while it keeps the cleanup finalizer: no node
    # answers for its IPs. Written by the node that announced them once it has stopped (the operator waits for it).
    WITHDRAWN = "Withdrawn"
    NO_ELIGIBLE_NODE = "NoEligibleNode"
    NO_READY_ENDPOINTS = "NoReadyEndpoints"
    # The IP is in no valid IPAddressPool's addresses (a status or annotation edited by hand, or a pool
    # shrunk meanwhile): never announced, whatever the Service's annotations name.
    NOT_IN_POOL = "NotInPool"


class ForwardingReason(Enum):
    """The reason of a NodePort-forwarded Service's Forwarding condition."""

    FORWARDING = "Forwarding"
    NO_HEALTHY_BACKEND = "NoHealthyBackend"
    DISABLED = "ForwardingDisabled"
    INVALID_SOURCE_RANGES = "InvalidSourceRanges"


class SteeringReason(Enum):
    """Whether the announcing speaker steers a Service's new connections around dead nodes, and why not
    (the `reason` label of ironlb_speaker_steering_services)."""

    STEERED = "SteeredAroundDeadNodes"  # some ready endpoints are on confirmed-dead nodes: the rest take it
    NOT_NEEDED = "NoEndpointOnDeadNode"
    LOCAL_POLICY = "LocalTrafficPolicy"  # kube-proxy sends the VIP's traffic to this node's endpoints only
    NO_LIVE_ENDPOINT = "NoLiveEndpoint"  # every ready endpoint is on a dead node: left to Kubernetes
    NODEPORT_FORWARDED = "NodePortForwarded"  # the pool's NodePort forwarding picks the nodes
    DISABLED = "SteeringDisabled"  # the speaker runs without it (no NET_ADMIN)


class PresenceReason(Enum):
    """The reason of a speaker Pod's HearsPeers condition."""

    PEERS_HEARD = "PeersHeard"
    NO_PEER_HEARD = "NoPeerHeard"


# Anything IronLB writes as a reason: an Event's `reason` field, a condition's `reason`, an Event's
# ironlb.io/reason annotation. Condition reasons are Event reasons too when a condition turns bad.
Reason = (EventReason | ConfigReason | AllocationReason | AnnounceReason | ForwardingReason | SteeringReason
          | PresenceReason)

E = TypeVar("E", bound=Enum)


def parse(kind: type[E], value: object) -> E | None:
    """The member of KIND whose value is VALUE (as read from the API), or None when there is none."""
    try:
        return kind(value)
    except ValueError:
        return None
