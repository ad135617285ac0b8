"""A planned change's figures, from hand-made connprobe event lines (e2e.testkit.changes)."""

from __future__ import annotations

import json

from e2e.testkit.changes import as_dict, figures
from e2e.testkit.connections import parse

START, END = 100.0, 130.0


def new(start: float, failure: str | None = None) -> str:
    """A `new` event line as connprobe writes it."""
    return json.dumps({"kind": "new", "start": start, "end": start + 0.3 if failure else start + 0.002,
                       "pod": None if failure else "web-a", "failure": failure})


def broke(opened: float, at: float, pod: str) -> str:
    """A `break` event line."""
    return json.dumps({"kind": "break", "conn": 0, "opened": opened, "at": at, "pod": pod, "failure": "reset"})


def test_only_what_fails_after_the_change_starts_counts() -> None:
    rec = parse([new(98.0, "timeout"), new(101.0), new(105.0, "timeout"), new(106.0, "refused"), new(139.0)])
    seen = figures(rec, START, END, set(), "node-1", "node-2")
    assert (seen.failed_connections, seen.attempts) == (2, 4)
    assert seen.failed_how == {"timeout": 1, "refused": 1}
    assert seen.failed_at_s == (5.0, 6.0)
    assert (seen.announcer_before, seen.announcer_after) == ("node-1", "node-2")


def test_a_break_on_a_removed_pod_is_told_apart_from_any_other() -> None:
    rec = parse([new(101.0), new(139.0), broke(90.0, 110.0, "web-old"), broke(90.0, 111.0, "web-b"),
                 broke(90.0, 99.0, "web-b")])
    seen = figures(rec, START, END, {"web-old"}, None, None)
    assert seen.long_lived_broken == {"gone_pod": 1, "other": 1}  # the one before the change is not its cost


def test_as_dict_is_json_ready() -> None:
    seen = figures(parse([new(101.0, "timeout"), new(139.0)]), START, END, set(), "node-1", "node-1")
    assert json.loads(json.dumps(as_dict(seen)))["change_s"] == 30.0
