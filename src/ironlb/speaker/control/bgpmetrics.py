"""BGP mode's metrics: per peer (never per prefix), read at scrape time from what BGPNodeStatus is made of.

The states and reasons are the API's enums (ironlb.api.bgp_status, ironlb.api.reasons), one series per value
with 1 on the current one, so an alert reads `state="Established"` and a dashboard the same words as
`kubectl get bgpnodestatus`. Without BGP mode each family is served empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ironlb.api.bgp_status import BFDState, NodeBGPStatus, SessionState
from ironlb.api.reasons import BGPDaemonReason, ConditionType
from ironlb.speaker.bgp.driver import BUCKETS, ApplyStats


def bgp_families(sp: Any) -> Iterator[Any]:
    """The BGP families of speaker SP (sp.bgp_status: its BGPNodeStatus writer, None without BGP mode)."""
    writer = getattr(sp, "bgp_status", None)
    status = writer.current() if writer is not None else None
    yield from _sessions(status)
    yield from _daemon(status)
    component = getattr(getattr(sp, "bgp", None), "driver", None)
    yield from _updates(getattr(getattr(component, "driver", None), "stats", None))


def _sessions(status: NodeBGPStatus | None) -> Iterator[Any]:
    state = GaugeMetricFamily("ironlb_speaker_bgp_session_state", "1 for the state of the BGP session to each "
                              "BGPPeer (RFC 4271's words, as BGPNodeStatus says them), 0 for the others",
                              labels=["peer", "state"])
    bfd = GaugeMetricFamily("ironlb_speaker_bgp_bfd_state", "1 for the state of each session's BFD session (Off: "
                            "the peer names no BFDProfile), 0 for the others", labels=["peer", "state"])
    prefixes = GaugeMetricFamily("ironlb_speaker_bgp_prefixes_advertised", "Prefixes this node sends to each "
                                 "BGPPeer, by address family", labels=["peer", "family"])
    error = GaugeMetricFamily("ironlb_speaker_bgp_session_last_error", "1 for the reason the session to each "
                              "BGPPeer last went down or failed to come up (no series: it never did)",
                              labels=["peer", "reason"])
    for session in status.sessions if status is not None else ():
        for value in SessionState:
            state.add_metric([session.peer, value.value], 1 if session.state is value else 0)
        for value in BFDState:
            bfd.add_metric([session.peer, value.value], 1 if session.bfd is value else 0)
        prefixes.add_metric([session.peer, "ipv4"], session.prefixes_sent_ipv4)
        prefixes.add_metric([session.peer, "ipv6"], session.prefixes_sent_ipv6)
        if session.last_error is not None:
            error.add_metric([session.peer, session.last_error.reason.value], 1)
    yield from (state, bfd, prefixes, error)


def _daemon(status: NodeBGPStatus | None) -> Iterator[Any]:
    up = GaugeMetricFamily("ironlb_speaker_bgp_frr_up", "1 while this node's FRR answers on its vty sockets "
                           "(whether or not it took the last change)")
    daemon = GaugeMetricFamily("ironlb_speaker_bgp_daemon_state", "1 for the DaemonReady reason of this node's "
                               "BGPNodeStatus (DaemonReady, DaemonUnreachable, ConfigRejected), 0 for the others",
                               labels=["reason"])
    if status is not None:
        cond = next((c for c in status.conditions if c.get("type") == ConditionType.BGP_DAEMON_READY.value), {})
        reason = next((r for r in BGPDaemonReason if r.value == cond.get("reason")), BGPDaemonReason.UNREACHABLE)
        up.add_metric([], 0 if reason is BGPDaemonReason.UNREACHABLE else 1)
        for value in BGPDaemonReason:
            daemon.add_metric([value.value], 1 if reason is value else 0)
    yield from (up, daemon)


def _updates(stats: ApplyStats | None) -> Iterator[Any]:
    applied = CounterMetricFamily("ironlb_speaker_bgp_updates", "Changes sent to FRR as command batches, by "
                                  "outcome (applied, or refused/unanswered: then the whole state is sent again)",
                                  labels=["outcome"])
    duration = HistogramMetricFamily("ironlb_speaker_bgp_update_seconds", "How long FRR took to take one change's "
                                     "command batches over its vty sockets")
    if stats is not None:
        applied.add_metric(["applied"], stats.applied)
        applied.add_metric(["failed"], stats.failed)
        cumulative, buckets = 0, []
        for bound, count in zip(BUCKETS, stats.buckets, strict=True):
            cumulative += count
            buckets.append((str(bound), cumulative))
        buckets.append(("+Inf", stats.applied + stats.failed))
        duration.add_metric([], buckets, stats.seconds_sum)
    yield from (applied, duration)
