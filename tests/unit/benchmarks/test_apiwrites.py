"""Counting IronLB's API writes from an audit log: finished mutating requests only, told by user agent, in the
window asked for."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from benchmarks._apiwrites import by_ironlb, count, parse


def event(t: str, verb: str, agent: str, resource: str, *, stage: str = "ResponseComplete", sub: str = "",
          user: str = "system:serviceaccount:ironlb-system:ironlb-operator") -> str:
    ref = {"resource": resource, "namespace": "ironlb-system", "name": "x", **({"subresource": sub} if sub else {})}
    return json.dumps({"kind": "Event", "level": "Metadata", "stage": stage, "verb": verb, "userAgent": agent,
                       "user": {"username": user}, "objectRef": ref,
                       "stageTimestamp": f"2026-12-07T03:00:{t}Z"})


def test_counts_ironlbs_finished_writes_in_the_window(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    lines = [
        event("00.000000", "update", "ironlb", "leases"),                      # before the window
        event("10.000000", "update", "ironlb", "leases"),
        event("10.000000", "update", "ironlb", "leases", stage="RequestReceived"),  # not finished: once only
        event("20.500000", "patch", "ironlb", "pods", sub="status", user="system:serviceaccount:ironlb-system:s"),
        event("30.000000", "update", "kubelet/v1.34.4 (linux/amd64)", "leases", user="system:node:node-1"),
        "not json",
        event("40.000000", "update", "ironlb", "leases"),
        event("50.000000", "update", "ironlb", "leases"),                      # after the window
    ]
    log.write_text("\n".join(lines) + "\n")
    rotated = tmp_path / "audit-2026-12-07T02-00-00.000.log"  # a backup the API server rotated out
    rotated.write_text(event("15.000000", "create", "ironlb", "events") + "\n")
    since = datetime.datetime(2026, 12, 7, 3, 0, 5, tzinfo=datetime.UTC).timestamp()
    out = count(since, since + 40.0, path=log)
    assert out["api_writes_per_min_idle"] == 6.0  # 4 writes in 40 s
    assert out["api_writes_idle_by_resource"] == {"update leases": 3.0, "create events": 1.5, "patch pods/status": 1.5}
    assert out["api_writes_idle_by_caller"]["system:serviceaccount:ironlb-system:ironlb-operator (ironlb)"] == 4.5
    everyone = count(since, since + 40.0, who=lambda w: True, path=log)
    assert everyone["api_writes_per_min_idle"] == 7.5  # and the kubelet's Lease


def test_reads_and_other_agents_are_not_ironlbs_writes() -> None:
    assert parse(event("00.0", "get", "ironlb", "leases")) is None
    assert parse(event("00.0", "watch", "ironlb", "pods")) is None
    kubelet = parse(event("00.0", "patch", "kubelet/v1.34.4", "pods", sub="status"))
    assert kubelet is not None and not by_ironlb(kubelet) and kubelet.resource == "pods/status"
    assert by_ironlb(parse(event("00.0", "patch", "ironlb", "services", sub="status")))  # type: ignore[arg-type]
