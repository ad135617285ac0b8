"""The allocator's answer in one word: why a Service got its IPs, or why not (imports nothing of IronLB).

Its own module so that the vocabulary in ironlb.api.reasons (which the fast plane loads) lists it
without loading the allocator's pools and selectors.
"""

from __future__ import annotations

from enum import Enum


class AllocationReason(Enum):
    """Outcome of an allocator call."""

    ASSIGNED = "Assigned"
    UNCHANGED = "Unchanged"
    RESTORED = "Restored"
    NO_POOL_MATCHES = "NoPoolMatches"
    POOL_NOT_FOUND = "PoolNotFound"
    POOL_EXHAUSTED = "PoolExhausted"
    FAMILY_UNAVAILABLE = "FamilyUnavailable"
    POOL_NOT_ALLOWED = "PoolNotAllowed"
    REQUESTED_IP_NOT_IN_POOL = "RequestedIPNotInPool"
    REQUESTED_IP_IN_USE = "RequestedIPInUse"
    REQUESTED_IP_HELD = "RequestedIPHeld"
    SHARING_INCOMPATIBLE = "SharingIncompatible"
    INVALID_REQUEST = "InvalidRequest"


OK_REASONS = (AllocationReason.ASSIGNED, AllocationReason.UNCHANGED, AllocationReason.RESTORED)
