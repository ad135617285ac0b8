"""Who writes to the API, and how often: the lab's kube-apiserver audit log, counted by caller.

The lab's audit policy (e2e/lab/control_plane.py) records every mutating request (create, update, patch,
delete) at the Metadata level: user, user agent, verb, resource, namespace, name, and the API server's
time. A caller is told by its user agent (IronLB's client sends `ironlb`; kubelets `kubelet/...`), so
the figure counts what IronLB itself writes, whatever else the lab writes in the same minutes (the
kubelets' node Leases, the EndpointSlice controller). Requests the API server refused count too:
they cost it the same.

`python -m benchmarks._apiwrites [--window S]`: IronLB's writes over the next S seconds of an idle lab
(default 180), per minute, by caller and by resource. Last line: the JSON. Used by benchmarks.compare
and benchmarks.swarm through `idle_writes`. What it leaves out: reads (lists, watches), and writes made
before the window (start-up, an assignment burst): let the lab settle first.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.lab.control_plane import AUDIT_LOG

MUTATING = frozenset({"create", "update", "patch", "delete", "deletecollection"})
IRONLB_AGENT = "ironlb"


@dataclass(frozen=True)
class Write:
    """One mutating request the API server finished."""

    at: float       # the API server's time, seconds since the epoch
    user: str
    agent: str
    verb: str
    resource: str   # with its subresource: pods/status
    namespace: str
    name: str


def by_ironlb(write: Write) -> bool:
    """Made by IronLB's client (operator, speakers, CLI)?"""
    return write.agent.split("/", 1)[0] == IRONLB_AGENT


def _epoch(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def parse(line: str) -> Write | None:
    """One audit event as a Write; None if it is not a finished mutating request."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if event.get("stage") != "ResponseComplete" or event.get("verb") not in MUTATING:
        return None
    ref = event.get("objectRef") or {}
    resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    return Write(_epoch(event["stageTimestamp"]), (event.get("user") or {}).get("username", ""),
                 event.get("userAgent", ""), event["verb"], resource, ref.get("namespace", ""), ref.get("name", ""))


def _logs(path: Path) -> list[Path]:
    """The log and its rotated backups (audit-<time>.log beside it), oldest first."""
    return sorted(path.parent.glob(f"{path.stem}-*{path.suffix}")) + ([path] if path.exists() else [])


def writes(since: float, until: float, path: Path = AUDIT_LOG) -> Iterator[Write]:
    """Every finished mutating request between SINCE and UNTIL (epoch seconds, the API server's clock)."""
    for log in _logs(path):
        with log.open(errors="replace") as lines:
            for line in lines:
                write = parse(line)
                if write is not None and since <= write.at < until:
                    yield write


def per_minute(found: list[Write], seconds: float, key: Callable[[Write], str]) -> dict[str, float]:
    """Writes per minute, grouped by KEY, largest first."""
    counts = Counter(key(w) for w in found)
    return {k: round(n * 60 / seconds, 1) for k, n in counts.most_common()}


def caller(write: Write) -> str:
    """Who made it: the user, and the program by its user agent."""
    return f"{write.user} ({write.agent.split(' ', 1)[0]})"


def count(since: float, until: float, who: Callable[[Write], bool] = by_ironlb,
          path: Path = AUDIT_LOG) -> dict[str, Any]:
    """WHO's writes between SINCE and UNTIL: per minute in all, by caller and by resource."""
    seconds = until - since
    found = [w for w in writes(since, until, path) if who(w)]
    return {"api_writes_per_min_idle": round(len(found) * 60 / seconds, 1), "window_s": round(seconds, 1),
            "api_writes_idle_by_caller": per_minute(found, seconds, caller),
            "api_writes_idle_by_resource": per_minute(found, seconds, lambda w: f"{w.verb} {w.resource}")}


def idle_writes(window_s: float, who: Callable[[Write], bool] = by_ironlb, path: Path = AUDIT_LOG) -> dict[str, Any]:
    """Wait WINDOW_S seconds, then count WHO's writes in them (the lab must be idle, settled, and audited)."""
    if not path.exists():
        raise RuntimeError(f"no audit log at {path}: the lab's API server predates its audit policy (lab down, up)")
    since = time.time()
    time.sleep(window_s)
    until = time.time()
    time.sleep(1.0)  # the log backend writes an event once the response is complete
    return count(since, until, who, path)


def main(argv: list[str] | None = None) -> None:
    """Measure IronLB's idle writes on the running lab and print them; the JSON last."""
    p = argparse.ArgumentParser(prog="python -m benchmarks._apiwrites", description=__doc__.split("\n\n")[0])
    p.add_argument("--window", type=float, default=180.0, help="seconds to count over")
    args = p.parse_args(argv)
    out = idle_writes(args.window)
    for name, rate in out["api_writes_idle_by_caller"].items():
        print(f"{rate:8.1f}/min  {name}")
    for name, rate in out["api_writes_idle_by_resource"].items():
        print(f"{rate:8.1f}/min  {name}")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
