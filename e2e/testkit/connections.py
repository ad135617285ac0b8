"""What a client saw around a kill, from `e2e.probes.connprobe`'s event lines: pure functions from the events
and the kill time to the figures `benchmarks.failover --kubelet` and the node-death test report.

- `vip_moved_s`: from the kill to the end of the first answered new connection started after it;
- `all_connections_ok_s`: from the kill to the end of the last failed new connection of the window after it
  (0 if none failed);
- failed new connections in that window, and long-lived connections broken in it, by cause.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from e2e.probes.connprobe import Failure, Kind

WINDOW_S = 60.0  # how long after a kill its failures count


@dataclass(frozen=True)
class Attempt:
    """One new connection: when it started and ended, and the pod that answered or why it failed."""

    start: float
    end: float
    pod: str | None
    failure: Failure | None

    @property
    def ok(self) -> bool:
        """True if a pod answered."""
        return self.failure is None


@dataclass(frozen=True)
class Break:
    """A long-lived connection that failed: when it had opened, when it broke, the pod it was on, and why."""

    conn: int
    opened: float
    at: float
    pod: str
    failure: Failure


@dataclass(frozen=True)
class Recording:
    """Everything one probe run recorded."""

    attempts: tuple[Attempt, ...]
    breaks: tuple[Break, ...]
    opened: int  # long-lived connections opened, first ones and reopened ones


class BreakCause(StrEnum):
    """Why a long-lived connection broke after a kill."""

    KILLED_POD = "killed_pod"  # it was on a pod of the killed node
    KILLED_ANNOUNCER = "killed_announcer"  # it opened before the kill, through the announcing node that was killed
    OTHER = "other"  # neither: a connection that a node's death should not have cost


@dataclass(frozen=True)
class KillFigures:
    """The client's view of one kill."""

    vip_moved_s: float | None  # None: no new connection was answered after the kill
    all_connections_ok_s: float
    failed_connections: int
    attempts: int  # new connections in the window
    failed_by_5s: tuple[int, ...]  # failed new connections in each 5-second slice of the window
    failed_how: dict[Failure, int]  # failed new connections by how they failed (only the ways seen)
    long_lived_broken: dict[BreakCause, int]
    observed_s: float  # how long after the kill the probe kept starting new connections


def as_dict(kill_figures: KillFigures) -> dict[str, Any]:
    """KILL_FIGURES as a JSON-ready dict, times rounded to the millisecond."""
    plain = asdict(kill_figures)
    plain["long_lived_broken"] = {cause.value: n for cause, n in kill_figures.long_lived_broken.items()}
    plain["failed_how"] = {failure.value: n for failure, n in kill_figures.failed_how.items()}
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in plain.items()}


def parse(lines: Iterable[str]) -> Recording:
    """The probe's JSON lines as a Recording (blank lines skipped)."""
    attempts, breaks, opened = [], [], 0
    for line in lines:
        if not line.strip():
            continue
        event = json.loads(line)
        kind = Kind(event["kind"])
        if kind is Kind.NEW:
            failure = Failure(event["failure"]) if event["failure"] else None
            attempts.append(Attempt(event["start"], event["end"], event["pod"], failure))
        elif kind is Kind.BREAK:
            breaks.append(Break(event["conn"], event["opened"], event["at"], event["pod"], Failure(event["failure"])))
        else:
            opened += 1
    return Recording(tuple(sorted(attempts, key=lambda a: a.start)), tuple(sorted(breaks, key=lambda b: b.at)),
                     opened)


def vip_moved_s(rec: Recording, kill: float) -> float | None:
    """Seconds from KILL to the end of the first answered new connection started after it."""
    answered = [a.end for a in rec.attempts if a.ok and a.start > kill]
    return min(answered) - kill if answered else None


def failed_after(rec: Recording, kill: float, window: float = WINDOW_S) -> list[Attempt]:
    """New connections that failed after KILL, among those started before the window's end (one started just
    before the kill and failing after it counts: the kill cost it)."""
    return [a for a in rec.attempts if not a.ok and a.end > kill and a.start <= kill + window]


def all_connections_ok_s(rec: Recording, kill: float, window: float = WINDOW_S) -> float:
    """Seconds from KILL to the end of the last failed new connection of the window; 0 if none failed."""
    failed = failed_after(rec, kill, window)
    return max(a.end for a in failed) - kill if failed else 0.0


def failed_by_slice(rec: Recording, kill: float, window: float = WINDOW_S, width: float = 5.0) -> tuple[int, ...]:
    """Failed new connections in each WIDTH-second slice after KILL, by when they started (an attempt started
    before the kill counts in the first slice)."""
    counts = [0] * max(1, round(window / width))
    for a in failed_after(rec, kill, window):
        counts[min(len(counts) - 1, max(0, int((a.start - kill) // width)))] += 1
    return tuple(counts)


def break_cause(brk: Break, kill: float, killed_pods: set[str], announcer_killed: bool) -> BreakCause:
    """Why BRK broke, given the pods that died with the node and whether that node was the announcer."""
    if brk.pod in killed_pods:
        return BreakCause.KILLED_POD
    if announcer_killed and brk.opened <= kill:
        return BreakCause.KILLED_ANNOUNCER
    return BreakCause.OTHER


def broken_after(rec: Recording, kill: float, killed_pods: set[str], announcer_killed: bool = True,
                 window: float = WINDOW_S) -> dict[BreakCause, int]:
    """Long-lived connections that broke in the window after KILL, counted by cause (every cause present)."""
    counts = Counter(break_cause(b, kill, killed_pods, announcer_killed) for b in rec.breaks
                     if kill < b.at <= kill + window)
    return {cause: counts.get(cause, 0) for cause in BreakCause}


def observed_s(rec: Recording, kill: float) -> float:
    """Seconds from KILL to the start of the last new connection the probe made."""
    return max((a.start for a in rec.attempts), default=kill) - kill


def figures(rec: Recording, kill: float, killed_pods: set[str], announcer_killed: bool = True,
            window: float = WINDOW_S) -> KillFigures:
    """Every figure of one kill."""
    in_window = [a for a in rec.attempts if a.end > kill and a.start <= kill + window]
    failed = failed_after(rec, kill, window)
    return KillFigures(
        vip_moved_s=vip_moved_s(rec, kill),
        all_connections_ok_s=all_connections_ok_s(rec, kill, window),
        failed_connections=len(failed),
        attempts=len(in_window),
        failed_by_5s=failed_by_slice(rec, kill, window),
        failed_how=dict(Counter(a.failure for a in failed if a.failure)),
        long_lived_broken=broken_after(rec, kill, killed_pods, announcer_killed, window),
        observed_s=observed_s(rec, kill),
    )


def answering_pods(rec: Recording, since: float) -> set[str]:
    """Pods that answered a new connection started at or after SINCE."""
    return {a.pod for a in rec.attempts if a.ok and a.pod and a.start >= since}
