"""The client's figures around a kill, from hand-made connprobe event lines (e2e.testkit.connections)."""

from __future__ import annotations

import json

import pytest

from e2e.probes.connprobe import Failure
from e2e.testkit.connections import (
    Attempt,
    Break,
    BreakCause,
    Recording,
    all_connections_ok_s,
    as_dict,
    break_cause,
    failed_after,
    failed_by_slice,
    figures,
    parse,
    vip_moved_s,
)

KILL = 100.0


def new(start: float, took: float = 0.002, pod: str | None = "web-a", failure: str | None = None) -> str:
    """A `new` event line as connprobe writes it."""
    return json.dumps({"kind": "new", "start": start, "end": start + took, "pod": None if failure else pod,
                       "failure": failure})


def broke(conn: int, opened: float, at: float, pod: str, failure: str = "reset") -> str:
    """A `break` event line."""
    return json.dumps({"kind": "break", "conn": conn, "opened": opened, "at": at, "pod": pod, "failure": failure})


def opened(conn: int, at: float, pod: str) -> str:
    """An `open` event line."""
    return json.dumps({"kind": "open", "conn": conn, "at": at, "pod": pod})


def steady(start: float, end: float, rate: float = 50.0, pod: str = "web-a") -> list[str]:
    """Answered new connections at RATE from START until END."""
    count = round((end - start) * rate)
    return [new(start + i / rate, pod=pod) for i in range(count)]


def test_parse_reads_every_kind_and_orders_by_time() -> None:
    rec = parse([new(2.0), "", new(1.0, took=0.3, failure="timeout"), opened(0, 0.5, "web-b"),
                 broke(0, 0.5, 3.0, "web-b"), opened(0, 3.2, "web-c")])
    assert [a.start for a in rec.attempts] == [1.0, 2.0]
    assert rec.attempts[0] == Attempt(1.0, 1.3, None, Failure.TIMEOUT) and not rec.attempts[0].ok
    assert rec.attempts[1].ok and rec.attempts[1].pod == "web-a"
    assert rec.breaks == (Break(0, 0.5, 3.0, "web-b", Failure.RESET),)
    assert rec.opened == 2


def test_parse_refuses_an_unknown_kind_or_failure() -> None:
    with pytest.raises(ValueError):
        parse([json.dumps({"kind": "gone"})])
    with pytest.raises(ValueError):
        parse([new(1.0, failure="bored")])


def test_a_clean_move_fails_only_while_the_vip_moves() -> None:
    # Answered until the kill, nothing for 0.25 s (each attempt times out after 0.3 s), answered after.
    lines = [*steady(95.0, KILL), *[new(KILL + i * 0.02, took=0.3, failure="timeout") for i in range(13)],
             *steady(KILL + 0.26, KILL + 61.0)]
    rec = parse(lines)
    assert vip_moved_s(rec, KILL) == pytest.approx(0.262)
    assert len(failed_after(rec, KILL)) == 13
    assert all_connections_ok_s(rec, KILL) == pytest.approx(0.24 + 0.3)
    assert failed_by_slice(rec, KILL) == (13,) + (0,) * 11
    assert figures(rec, KILL, set()).failed_how == {Failure.TIMEOUT: 13}


def test_stale_endpoints_fail_one_connection_in_three_until_the_node_is_marked_not_ready() -> None:
    # The picture: after the move, every third new connection goes to the dead node's pod for 45 s.
    after = [new(KILL + 0.3 + i * 0.02, took=0.3, failure="timeout") if i % 3 == 0 else
             new(KILL + 0.3 + i * 0.02, pod="web-b") for i in range(round(44.7 / 0.02))]
    rec = parse([*steady(95.0, KILL), *after, *steady(KILL + 45.0, KILL + 61.0)])
    # The last failed one started at 0.3 + 2232 * 0.02 s and gave up 0.3 s later.
    assert all_connections_ok_s(rec, KILL) == pytest.approx(0.3 + 2232 * 0.02 + 0.3)
    assert len(failed_after(rec, KILL)) == 2232 // 3 + 1
    slices = failed_by_slice(rec, KILL)
    assert all(70 <= n <= 90 for n in slices[:8]) and slices[9:] == (0, 0, 0)


def test_no_failure_is_zero_and_failures_outside_the_window_do_not_count() -> None:
    rec = parse([*steady(95.0, KILL + 0.5), new(KILL - 1.0, took=0.3, failure="refused"),
                 new(KILL + 70.0, took=0.3, failure="timeout")])
    assert all_connections_ok_s(rec, KILL) == 0.0
    assert failed_after(rec, KILL) == []
    assert vip_moved_s(rec, KILL) == pytest.approx(0.022)  # the first started after the kill, not the one at it


def test_a_connection_started_before_the_kill_that_fails_after_it_counts() -> None:
    rec = parse([new(KILL - 0.1, took=0.3, failure="timeout")])
    assert [a.start for a in failed_after(rec, KILL)] == [KILL - 0.1]
    assert all_connections_ok_s(rec, KILL) == pytest.approx(0.2)
    assert failed_by_slice(rec, KILL, window=10.0)[0] == 1


def test_no_answer_after_the_kill_means_the_vip_never_moved() -> None:
    rec = parse([*steady(95.0, KILL), new(KILL + 1.0, took=0.3, failure="timeout")])
    assert vip_moved_s(rec, KILL) is None


def test_breaks_are_told_apart_by_cause() -> None:
    killed = {"web-a"}
    on_killed_pod = Break(0, 50.0, KILL + 0.2, "web-a", Failure.TIMEOUT)
    through_announcer = Break(1, 50.0, KILL + 0.3, "web-b", Failure.RESET)
    opened_after = Break(2, KILL + 1.0, KILL + 5.0, "web-b", Failure.RESET)
    assert break_cause(on_killed_pod, KILL, killed, announcer_killed=True) is BreakCause.KILLED_POD
    assert break_cause(through_announcer, KILL, killed, announcer_killed=True) is BreakCause.KILLED_ANNOUNCER
    assert break_cause(through_announcer, KILL, killed, announcer_killed=False) is BreakCause.OTHER
    assert break_cause(opened_after, KILL, killed, announcer_killed=True) is BreakCause.OTHER


def test_figures_count_each_cause_and_only_breaks_in_the_window() -> None:
    lines = [*steady(95.0, KILL), *steady(KILL + 0.3, KILL + 61.0), opened(0, 96.0, "web-a"),
             broke(0, 96.0, KILL + 0.2, "web-a"), broke(1, 96.0, KILL + 0.25, "web-b"),
             broke(2, KILL + 2.0, KILL + 30.0, "web-c"), broke(3, 96.0, KILL - 3.0, "web-b"),
             broke(4, KILL + 2.0, KILL + 61.0, "web-c")]
    result = figures(parse(lines), KILL, {"web-a"})
    assert result.long_lived_broken == {BreakCause.KILLED_POD: 1, BreakCause.KILLED_ANNOUNCER: 1,
                                        BreakCause.OTHER: 1}
    assert result.failed_connections == 0 and result.all_connections_ok_s == 0.0 and result.failed_how == {}
    assert result.vip_moved_s == pytest.approx(0.302)
    assert result.attempts == 2986  # the window's new connections: started up to KILL + 60
    assert result.observed_s == pytest.approx(60.98)


def test_an_empty_recording_has_no_figures_to_invent() -> None:
    result = figures(Recording((), (), 0), KILL, set())
    assert result.vip_moved_s is None and result.attempts == 0 and result.observed_s == 0.0


def test_as_dict_is_json_with_causes_by_name_and_times_in_milliseconds() -> None:
    rec = parse([*steady(99.0, KILL), new(KILL + 0.01, took=0.3, failure="timeout"), new(KILL + 0.2512345)])
    plain = as_dict(figures(rec, KILL, set()))
    assert json.loads(json.dumps(plain)) == {**plain, "failed_by_5s": list(plain["failed_by_5s"])}
    assert plain["vip_moved_s"] == 0.253 and plain["all_connections_ok_s"] == 0.31
    assert plain["long_lived_broken"] == {"killed_pod": 0, "killed_announcer": 0, "other": 0}
    assert plain["failed_how"] == {"timeout": 1}
