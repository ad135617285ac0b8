"""Heartbeat counters, and the cadence of heartbeat rounds (split out of transport.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Counters:
    """Heartbeat counters."""

    sent: int = 0
    datagrams_sent: int = 0  # every datagram handed to the kernel: heartbeats, format probes, goodbyes
    datagrams_received: int = 0  # every datagram read, refused ones included
    unsent: int = 0  # not sent: the send buffer was full (never queued behind others), or the kernel refused it
    send_errors: dict[str, int] = field(default_factory=dict)  # errno name -> datagrams the kernel refused
    received: int = 0
    deaths: int = 0  # peers declared dead (a heartbeat timeout, or never heard)
    late: int = 0  # heartbeat rounds that woke over LATE_S after they were due (the loop was held up)
    worst_late_ms: float = 0.0  # the latest any round woke
    notices_sent: int = 0  # ring mode's notices (SUSPECT, HEARD, verdicts, SYNC and its answers)
    notices_received: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    source_filter: bool = False  # the kernel drops datagrams from non-peers (a socket filter is attached)
    filter_failures: int = 0  # times the kernel refused the filter (the user-space check stands alone then)


def next_due(due: float, woke: float, interval: float) -> float:
    """When the next round is due: one interval after this one was due, whatever its sends cost (a
    round to 99 peers takes milliseconds, and waiting a full interval after it would stretch every
    gap by that); a round that woke an interval or more late starts the cadence afresh from then."""
    return due + interval if woke - due < interval else woke + interval
