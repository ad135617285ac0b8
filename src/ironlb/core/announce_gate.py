"""Whether this node may newly announce a Service that just changed: once its kube-proxy has the change.

A speaker and this node's kube-proxy watch the same Services and EndpointSlices, but kube-proxy writes its
rules on its own schedule; a node that announces before kube-proxy's next sync attracts traffic that
kube-proxy rejects (docs/design.md, "Announcing after kube-proxy's sync"). kube-proxy's metrics give, per
IP family, when it last queued a sync (it received a change) and when it last finished one. The gate lets a
new announcement through once, for every family of the Service's IPs, kube-proxy has queued a change no
earlier than the speaker saw its own (minus a margin) and finished a sync since; or once a bound has passed.

Clocks: kube-proxy stamps both series with the wall clock, in seconds since the epoch, and runs on the same
node as the speaker, so the speaker stamps its changes with the same wall clock (`time.time`); the monotonic
clock counts from an arbitrary start and cannot be compared with them. The margin covers the two watches
delivering the same event at slightly different moments: kube-proxy may get it a little before the speaker
does. Nothing here reads a clock: the caller passes the times.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum

# How much earlier than this speaker kube-proxy may have received the same change (two watches of one API
# server, and the speaker's own loop's delay in handling the event).
MARGIN_S = 0.5
# Off by default: in the lab the gate held first claims while the Service's status already named the node
# (docs/design.md, "Announcing after kube-proxy's sync"). A bound that lets kube-proxy sync: 3 s (minSyncPeriod
# is a second by default, plus the sync itself).
DEFAULT_BOUND_S = 0.0


class AnnounceGateReason(Enum):
    """Why a new announcement of a Service goes out now, or waits (a metric label and a log word)."""

    NO_RECENT_CHANGE = "NoRecentChange"  # the Service and its slices have not changed within the bound
    KUBE_PROXY_SYNCED = "KubeProxySynced"  # kube-proxy received a change since about ours and synced after it
    WAITING = "WaitingForKubeProxy"  # held: kube-proxy has not synced since the change yet
    KUBE_PROXY_ABSENT = "KubeProxyAbsent"  # no sync series for a family of the Service's IPs (not kube-proxy's)
    KUBE_PROXY_UNREADABLE = "KubeProxyUnreadable"  # its metrics did not answer
    BOUND_PASSED = "WaitBoundPassed"  # waited the bound: announced anyway
    DISABLED = "GateDisabled"  # no kube-proxy metrics URL, or a bound of 0



@dataclass(frozen=True)
class FamilySync:
    """kube-proxy's two timestamps for one IP family (wall-clock seconds; None: the series is not there)."""

    synced: float | None = None  # its last successful sync ended
    queued: float | None = None  # it last received a change and queued a sync


@dataclass(frozen=True)
class KubeProxyReading:
    """One read of kube-proxy's metrics: per family ("IPv4", "IPv6"), and when it was taken (wall clock)."""

    families: Mapping[str, FamilySync]
    taken_at: float
    readable: bool = True


def family_synced(sync: FamilySync, changed_at: float, margin: float = MARGIN_S) -> bool:
    """Whether kube-proxy's rules of this family include a change this speaker saw at CHANGED_AT."""
    if sync.synced is None or sync.queued is None:
        return False
    return sync.queued >= changed_at - margin and sync.synced >= sync.queued


def decide(changed_at: float | None, now: float, families: Collection[str], reading: KubeProxyReading | None,
           bound: float, margin: float = MARGIN_S) -> AnnounceGateReason:
    """May this node newly announce a Service whose last change it saw at CHANGED_AT (None: none seen), with
    IPs of FAMILIES, at NOW, given kube-proxy's latest READING (None: not read since the gate started)?"""
    if bound <= 0:
        return AnnounceGateReason.DISABLED
    if changed_at is None or now - changed_at >= bound:
        # Both are read on one clock by one process: a change older than the bound is no recent change,
        # and a change held that long has waited the bound (`held` tells the two apart).
        return AnnounceGateReason.NO_RECENT_CHANGE
    if reading is None or reading.taken_at < changed_at:
        return AnnounceGateReason.WAITING  # nothing read since the change: read first
    if not reading.readable:
        return AnnounceGateReason.KUBE_PROXY_UNREADABLE
    syncs = [reading.families.get(family) for family in families]
    if not families or any(sync is None for sync in syncs):
        return AnnounceGateReason.KUBE_PROXY_ABSENT
    if all(family_synced(sync, changed_at, margin) for sync in syncs if sync is not None):
        return AnnounceGateReason.KUBE_PROXY_SYNCED
    return AnnounceGateReason.WAITING


def released(reason: AnnounceGateReason, was_held: bool) -> AnnounceGateReason:
    """The reason to report for a release: a held change that aged past the bound waited the bound."""
    if was_held and reason is AnnounceGateReason.NO_RECENT_CHANGE:
        return AnnounceGateReason.BOUND_PASSED
    return reason


def family_of(ip: str) -> str:
    """kube-proxy's name for IP's family (its metrics' `ip_family` label)."""
    return "IPv6" if ":" in ip else "IPv4"
