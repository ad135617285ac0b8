"""Every reason IronLB writes, as enums: Event reasons, condition types and condition reasons.

Writers pass members, never text; readers (doctor, metrics, tests) turn what they read back into a
member with `parse` and decide on that. A member's value is what users see (`kubectl get events`,
status.conditions, metric labels): it is part of the API and changes only with a stated reason.
The allocator's reasons (AllocationReason), the announce gate's (AnnounceGateReason, a metric label) and what a
drained BGP node did with the routes FRR still announced (StartDrain, in the Drained condition's message) are
defined by their decisions in ironlb.core, which imports nothing of api/, and are listed here with the rest.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from ironlb.core.allocation_reason import AllocationReason
from ironlb.core.announce_gate import AnnounceGateReason
from ironlb.core.bgp.startdrain import StartDrain

__all__ = ["GOOD_WHEN_TRUE", "SPEAKER_CONDITIONS", "AllocationReason", "AnnounceGateReason", "AnnounceReason",
           "ConditionType", "ConfigReason", "EventReason", "ForwardingReason", "PresenceReason", "Reason",
           "SteeringReason", "parse"]


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
    # BGP mode. A Service: which nodes and peers carry each IP over BGP (the speakers', BGPAnnounceReason).
    SERVICE_BGP_ANNOUNCED = "ironlb.io/BGPAnnounced"
    # BGPNodeStatus: whether the node's speaker reaches and configures its FRR (BGPDaemonReason).
    BGP_DAEMON_READY = "DaemonReady"
    # BGPNodeStatus: True while the node's routes are drained or draining, and why (BGPDrainReason).
    BGP_DRAINED = "Drained"


# The condition types the speaker writes: the chart's admission policy lets the speaker change only these on
# a Service (never its ingress, annotations, the operator's Allocated or other controllers' conditions).
SPEAKER_CONDITIONS = (ConditionType.SERVICE_ANNOUNCED, ConditionType.SERVICE_FORWARDING,
                      ConditionType.SERVICE_BGP_ANNOUNCED)
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
          | PresenceReason | AnnounceGateReason)

E = TypeVar("E", bound=Enum)


def parse(kind: type[E], value: object) -> E | None:
    """The member of KIND whose value is VALUE (as read from the API), or None when there is none."""
    try:
        return kind(value)
    except ValueError:
        return None


# --- BGP mode ----------------------------------------------------------------------------------------------


class BGPAnnounceReason(Enum):
    """Why a Service's IP is, or is not, announced over BGP (the Service's ironlb.io/BGPAnnounced condition,
    whose message names the nodes and peers that carry each IP)."""

    ADVERTISED = "Advertised"  # at least one node has sent the route to at least one peer
    NO_BGP_ADVERTISEMENT = "NoBGPAdvertisement"  # no BGPAdvertisement covers the Service's pool
    NO_ANNOUNCING_NODE = "NoAnnouncingNode"  # no selected node may announce it (Local: none has a ready endpoint)
    NO_ESTABLISHED_SESSION = "NoEstablishedSession"  # nodes would announce it, but none has a session up
    DRAINING = "Draining"  # still announced, less preferred (graceful shutdown) before the nodes withdraw


class BGPSessionReason(Enum):
    """Why a BGP session went down or failed to come up (a session's lastError in BGPNodeStatus, and the
    reason of the Event a speaker records then)."""

    NOTIFICATION_RECEIVED = "NotificationReceived"  # the peer closed it (bad ASN, bad OPEN, Cease ...)
    NOTIFICATION_SENT = "NotificationSent"  # this node closed it
    HOLD_TIMER_EXPIRED = "HoldTimerExpired"
    BFD_DOWN = "BFDDown"
    CONNECT_FAILED = "ConnectFailed"  # no TCP connection (refused, unreachable, wrong password: MD5 drops SYNs)
    CONNECTION_RESET = "ConnectionReset"  # the TCP connection broke without a NOTIFICATION
    ADMIN_SHUTDOWN = "AdminShutdown"  # closed on purpose (drain, peer removed from the configuration)
    DAEMON_UNREACHABLE = "DaemonUnreachable"  # the speaker cannot reach FRR: the session's state is unknown


class BGPConfigReason(Enum):
    """Problems with BGP objects that admission cannot see (it checks one object at a time), found when the
    objects are read together (ironlb.api.bgp); the reason of the Invalid condition on the object."""

    VALID = "Valid"
    INVALID_SPEC = "InvalidSpec"  # what admission refuses, in an object stored before the CRD checked it
    PASSWORD_SECRET_NOT_FOUND = "PasswordSecretNotFound"
    PASSWORD_SECRET_WRONG_TYPE = "PasswordSecretWrongType"  # not kubernetes.io/basic-auth
    PASSWORD_SECRET_NO_PASSWORD = "PasswordSecretNoPassword"  # no (decodable) 'password' key
    BFD_PROFILE_NOT_FOUND = "BFDProfileNotFound"
    ECHO_MODE_MULTI_HOP = "EchoModeMultiHop"  # BFD echo needs a single-hop session
    PEER_NOT_FOUND = "PeerNotFound"
    POOL_NOT_FOUND = "PoolNotFound"
    AGGREGATION_TOO_SHORT = "AggregationTooShort"  # the aggregate would cover addresses outside the pool


class BGPDaemonReason(Enum):
    """Whether a node's speaker reaches and configures its FRR (the DaemonReady condition of BGPNodeStatus)."""

    READY = "DaemonReady"
    UNREACHABLE = "DaemonUnreachable"  # FRR's vty sockets do not answer (not started, killed, restarting)
    CONFIG_REJECTED = "ConfigRejected"  # FRR refused a command batch


# BGP mode's reasons join the rest (added here, below them, so that each block stays whole).
Reason = Reason | BGPAnnounceReason | BGPSessionReason | BGPConfigReason | BGPDaemonReason
__all__ += ["BGPAnnounceReason", "BGPConfigReason", "BGPDaemonReason", "BGPSessionReason"]


class BGPDrainReason(Enum):
    """Why a node's BGP routes are drained (the Drained condition of BGPNodeStatus); core.bgp.nodedrain decides."""

    NOT_DRAINED = "NotDrained"
    CORDONED = "Cordoned"  # spec.unschedulable (kubectl cordon, kubectl drain)
    OUT_OF_SERVICE = "OutOfService"  # the node.kubernetes.io/out-of-service taint
    CLOUD_SHUTDOWN = "NodeShutdown"  # the node.cloudprovider.kubernetes.io/shutdown taint
    TO_BE_DELETED = "ToBeDeleted"  # the cluster autoscaler's ToBeDeletedByClusterAutoscaler taint
    NODE_DELETED = "NodeDeleted"
    TERMINATING = "SpeakerTerminating"  # SIGTERM


Reason = Reason | BGPDrainReason | StartDrain
__all__ += ["BGPDrainReason", "StartDrain"]
