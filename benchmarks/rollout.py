"""Planned changes as a client sees them, on real nodes.

`python -m benchmarks.rollout --kubelet [--policy Cluster|Local] [--only SCENARIO ...]`: the real-node lab
(`up --kubelet`, 3 nodes, IronLB installed by the chart with its defaults; reused if one runs), a Deployment with
a pod per node behind a LoadBalancer Service with the given externalTrafficPolicy. For each scenario the client
(`e2e.probes.connprobe`: new connections at 50 Hz, 300 ms timeout, 4 long-lived ones) probes from 2 s before the
change until 10 s after it is done:

- `drain`: `kubectl drain` of the announcing node, then `kubectl uncordon` (the uncordon is not probed);
- `workload_rollout`: `kubectl rollout restart deployment` of the workload, until the rollout is done;
- `speaker_rollout`: `kubectl rollout restart daemonset` of IronLB's speaker, until it is done;
- `operator_rollout`: `kubectl rollout restart deployment` of IronLB's operator, until it is done.

One JSON line per scenario, then one with all of them: `failed_connections` (new ones), long-lived connections
broken by cause (`gone_pod`: on a pod the change removed; `other`), and when each failed one started.
"""

from __future__ import annotations

import argparse
import json
import sys
from enum import StrEnum
from typing import Any

from benchmarks._figures import report
from e2e.lab import reallab
from e2e.testkit import changes, nodedeath
from e2e.testkit.testing import Kube

NAME = "bench-rollout"
ADDRESSES = "198.51.100.232/29"
DRAIN_TIMEOUT_S = 180


class Scenario(StrEnum):
    """A planned change."""

    DRAIN = "drain"
    WORKLOAD_ROLLOUT = "workload_rollout"
    SPEAKER_ROLLOUT = "speaker_rollout"
    OPERATOR_ROLLOUT = "operator_rollout"


def drain(kube: Kube, node: str) -> bool:
    """`kubectl drain` NODE as an administrator does before maintenance; False if it did not finish in time."""
    return kube.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                        f"--timeout={DRAIN_TIMEOUT_S}s", check=False, timeout=DRAIN_TIMEOUT_S + 30).returncode == 0


def rollout(kube: Kube, scenario: Scenario) -> bool:
    """Restart the workload, the speaker or the operator of SCENARIO; True once the rollout is done, False if
    it was not in time."""
    if scenario is Scenario.WORKLOAD_ROLLOUT:
        return changes.rollout_restart(kube, "deployment", NAME, "default")
    kind = "daemonset" if scenario is Scenario.SPEAKER_ROLLOUT else "deployment"
    return changes.rollout_restart(kube, kind, changes.ironlb_workload(kube, kind), reallab.NAMESPACE)


def run_scenario(kube: Kube, vip: str, policy: str, scenario: Scenario) -> dict[str, Any]:
    """One change with the client probing throughout; its figures. A drained node is uncordoned afterwards."""
    if scenario is not Scenario.DRAIN:
        seen = changes.observe(kube, NAME, vip, policy, lambda: rollout(kube, scenario))
        return {"scenario": scenario.value, **changes.as_dict(seen)}
    node = nodedeath.wait_serving(kube, NAME, vip, policy)
    try:
        seen = changes.observe(kube, NAME, vip, policy, lambda: drain(kube, node))
    finally:
        kube.kubectl("uncordon", node)
    return {"scenario": scenario.value, "node": node, **changes.as_dict(seen)}


def main() -> int:
    """Run the scenarios and print the figures."""
    p = argparse.ArgumentParser(prog="benchmarks.rollout")
    p.add_argument("--kubelet", action="store_true", required=True, help="on real nodes (the only mode)")
    p.add_argument("--policy", choices=nodedeath.POLICIES, default="Cluster", help="externalTrafficPolicy")
    p.add_argument("--only", nargs="+", choices=[s.value for s in Scenario], help="these scenarios only")
    args = p.parse_args()
    scenarios = [Scenario(s) for s in args.only] if args.only else list(Scenario)
    kube = nodedeath.real_lab()
    nodedeath.unserve(kube, NAME)
    vip = nodedeath.serve(kube, NAME, ADDRESSES, args.policy)
    results = {}
    for scenario in scenarios:
        results[scenario.value] = run_scenario(kube, vip, args.policy, scenario)
        print(json.dumps(results[scenario.value]), flush=True)
    nodedeath.unserve(kube, NAME)
    report({"mode": "kubelet", "policy": args.policy,
            **{name: {"failed_connections": r["failed_connections"], "attempts": r["attempts"],
                      "long_lived_broken": r["long_lived_broken"], "completed": r["completed"]}
               for name, r in results.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
