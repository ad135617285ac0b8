"""A planned change on real nodes (`up --kubelet`) as a client sees it: `e2e.probes.connprobe` runs from before
the change until a settling time after it is done, and the figures come from `e2e.testkit.connections`. Shared by
`benchmarks.rollout --kubelet` and `e2e/test_node_death.py`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from e2e.lab import reallab
from e2e.testkit import nodedeath
from e2e.testkit.connections import BreakCause, Recording, broken_after, failed_after, parse
from e2e.testkit.testing import Kube

LONGEST_S = 600.0  # the probe's own limit: a change that takes longer is cut off with it
SETTLE_S = 10.0  # after the change is done: an election or a table that lags behind still counts


@dataclass(frozen=True)
class ChangeFigures:
    """The client's view of one change."""

    failed_connections: int  # new connections that failed from the change's start to the end of the settling
    attempts: int
    failed_how: dict[str, int]
    failed_at_s: tuple[float, ...]  # when each failed one started, from the change's start
    long_lived_broken: dict[str, int]  # "gone_pod": on a pod the change removed; "other": any other
    change_s: float  # from the start of the change until it was done (or given up)
    completed: bool  # False: the change did not finish in its time (a rollout that never became ready)
    announcer_before: str | None
    announcer_after: str | None


def as_dict(change: ChangeFigures) -> dict[str, Any]:
    """CHANGE as a JSON-ready dict."""
    plain = {k: getattr(change, k) for k in change.__dataclass_fields__}
    plain["failed_at_s"] = [round(t, 3) for t in change.failed_at_s]
    plain["change_s"] = round(change.change_s, 1)
    return plain


def record_change(vip: str, change: Callable[[], bool], before_s: float = 2.0,
                  settle_s: float = SETTLE_S) -> tuple[Recording, float, float, bool]:
    """Probe VIP from BEFORE_S before calling CHANGE until SETTLE_S after it returns; return what the probe
    recorded, the monotonic times the change started and ended, and whether it completed (what CHANGE
    returned)."""
    prober = nodedeath.probe(vip, LONGEST_S)
    lines: list[str] = []
    # Read while the change runs: a probe whose pipe is full blocks on its next line and stops probing.
    reader = threading.Thread(target=lambda: lines.extend(prober.stdout or []), daemon=True)
    reader.start()
    try:
        time.sleep(before_s)  # the long-lived connections open before the change
        started = time.monotonic()
        completed = change()
        ended = time.monotonic()
        time.sleep(settle_s)
    finally:
        prober.terminate()
        prober.wait(timeout=30)
        reader.join(timeout=30)
        if prober.stdout:
            prober.stdout.close()
    # The probe stopped where it was: a last line cut short is dropped.
    return parse(line for line in lines if line.endswith("\n")), started, ended, completed


def figures(rec: Recording, started: float, ended: float, gone_pods: set[str], announcer_before: str | None,
            announcer_after: str | None, completed: bool = True) -> ChangeFigures:
    """Every figure of one change that started at STARTED and was done at ENDED; GONE_PODS: the pods it
    removed."""
    window = max(a.start for a in rec.attempts) - started if rec.attempts else 0.0
    failed = failed_after(rec, started, window)
    broken = broken_after(rec, started, gone_pods, announcer_killed=False, window=window)
    how: dict[str, int] = {}
    for a in failed:
        if a.failure:
            how[a.failure.value] = how.get(a.failure.value, 0) + 1
    return ChangeFigures(
        failed_connections=len(failed),
        attempts=len([a for a in rec.attempts if a.end > started]),
        failed_how=how,
        failed_at_s=tuple(a.start - started for a in failed),
        long_lived_broken={"gone_pod": broken[BreakCause.KILLED_POD], "other": broken[BreakCause.OTHER]},
        change_s=ended - started,
        completed=completed,
        announcer_before=announcer_before,
        announcer_after=announcer_after,
    )


def spread(kube: Kube, name: str, timeout: float = 120) -> None:
    """Give every node a Ready pod of NAME again: a rolling update can leave two on one node and none on another
    (the topology spread is only checked when a pod is placed), so one of the doubles is deleted and the
    scheduler places its replacement on the empty node."""
    nodes = set(kube.nodes)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        by_node: dict[str, list[str]] = {}
        for pod in reallab.app_pods(kube.bin_dir, name, "default"):
            if not pod["metadata"].get("deletionTimestamp") and pod["spec"].get("nodeName"):
                by_node.setdefault(pod["spec"]["nodeName"], []).append(pod["metadata"]["name"])
        doubled = [pods for pods in by_node.values() if len(pods) > 1]
        if set(by_node) >= nodes or not doubled:
            return
        kube.kubectl("delete", "pod", doubled[0][0], "--wait=false")
        time.sleep(2)  # the replacement is placed before the next look
    raise RuntimeError(f"pods of {name} still not spread over {sorted(nodes)} after {timeout} s")


def observe(kube: Kube, name: str, vip: str, policy: str, change: Callable[[], bool]) -> ChangeFigures:
    """Wait until NAME serves through VIP, run CHANGE (True if it completed) with the client probing throughout,
    and return the figures; the pods of NAME that were gone afterwards count as the ones the change removed."""
    spread(kube, name)
    before_node = nodedeath.wait_serving(kube, name, vip, policy)
    pods_before = set(nodedeath.pods_by_node(kube, name).values())
    rec, started, ended, completed = record_change(vip, change)
    pods_after = {p["metadata"]["name"] for p in reallab.app_pods(kube.bin_dir, name, "default")
                  if not p["metadata"].get("deletionTimestamp")}
    return figures(rec, started, ended, pods_before - pods_after, before_node, nodedeath.announcer(kube, name),
                   completed)


def rollout_restart(kube: Kube, kind: str, name: str, namespace: str, timeout: float = 180) -> bool:
    """`kubectl rollout restart KIND/NAME`, then wait until the rollout is done; False if it was not within
    TIMEOUT."""
    kube.kubectl("rollout", "restart", f"{kind}/{name}", "-n", namespace)
    return kube.kubectl("rollout", "status", f"{kind}/{name}", "-n", namespace, f"--timeout={timeout:.0f}s",
                        check=False, timeout=timeout + 30).returncode == 0


def ironlb_workload(kube: Kube, kind: str) -> str:
    """The name of IronLB's one KIND (daemonset: the speaker, deployment: the operator)."""
    items = json.loads(kube.kubectl("get", kind, "-n", reallab.NAMESPACE, "-o", "json").stdout)["items"]
    if len(items) != 1:
        raise LookupError(f"expected one {kind} of IronLB, found {[i['metadata']['name'] for i in items]}")
    return items[0]["metadata"]["name"]
