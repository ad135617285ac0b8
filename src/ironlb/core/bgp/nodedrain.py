"""When a node's own Node says it is going away: drain its BGP routes first, and announce again once it is back.

Pure: Node facts in, a cause and an action out. The speaker feeds the facts of its own Node from the watch it
already has (speaker.bgp.nodedrain); SIGTERM is the other trigger, handled where the process stops.

What drains (docs/design.md, "BGP mode: drain before break"):
- `spec.unschedulable` (kubectl cordon, and so kubectl drain, whose first step it is), and the taint the node
  lifecycle controller mirrors it into (node.kubernetes.io/unschedulable);
- node.kubernetes.io/out-of-service: an administrator's word that the node is shut down or out of service
  (non-graceful node shutdown);
- node.cloudprovider.kubernetes.io/shutdown: the cloud provider's node controller saw the instance shut down;
- ToBeDeletedByClusterAutoscaler: the autoscaler is about to delete the node (kube-proxy's own health check
  fails for it for the same reason);
- the Node deleted.
The cordon and its mirror taint drain only with `on_cordon` (the speaker's --bgp-drain-on-cordon, on by
default): clusters that cordon nodes that keep serving (maintenance cordons) turn it off; the other taints and
SIGTERM drain either way.
What does not: not-ready and unreachable (the kubelet or the API's view of it, not the node's network: the
heartbeats and BFD judge that), and any other taint. A graceful node shutdown puts no taint in Kubernetes 1.34
(the kubelet sets Ready false and stops the Pods): it reaches the speaker as SIGTERM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


class DrainCause(Enum):
    """Why a node's routes are drained (the value is the reason BGPNodeStatus's Drained condition shows)."""

    CORDONED = "Cordoned"
    OUT_OF_SERVICE = "OutOfService"
    CLOUD_SHUTDOWN = "NodeShutdown"
    TO_BE_DELETED = "ToBeDeleted"
    NODE_DELETED = "NodeDeleted"
    TERMINATING = "SpeakerTerminating"  # SIGTERM: the speaker stops (not a Node fact)


class DrainAction(Enum):
    """What the speaker does about a Node change."""

    DRAIN = "Drain"
    UNDRAIN = "Undrain"
    NONE = "None"


UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
# Taint key -> cause, in the order a cause is chosen when several are present.
DRAIN_TAINTS: dict[str, DrainCause] = {
    "node.kubernetes.io/out-of-service": DrainCause.OUT_OF_SERVICE,
    "node.cloudprovider.kubernetes.io/shutdown": DrainCause.CLOUD_SHUTDOWN,
    "ToBeDeletedByClusterAutoscaler": DrainCause.TO_BE_DELETED,
    UNSCHEDULABLE_TAINT: DrainCause.CORDONED,
}


@dataclass(frozen=True)
class NodeFacts:
    """What the decision reads of a Node: cordoned or not, and its taints' keys."""

    unschedulable: bool = False
    taints: frozenset[str] = frozenset()

    @staticmethod
    def of(node: Mapping[str, Any]) -> NodeFacts:
        """The facts of a Node object (as the API or the speaker's slim copy gives it)."""
        spec = node.get("spec") or {}
        taints = spec.get("taints") or ()
        keys = frozenset(str(t.get("key")) for t in taints if isinstance(t, Mapping) and t.get("key"))
        return NodeFacts(spec.get("unschedulable") is True, keys)


def drain_cause(facts: NodeFacts | None, on_cordon: bool = True) -> DrainCause | None:
    """Why a node with FACTS (None: its Node is gone) must not announce over BGP, or None when it may; a cordon
    counts only ON_CORDON."""
    if facts is None:
        return DrainCause.NODE_DELETED
    for key, cause in DRAIN_TAINTS.items():
        if key in facts.taints and (on_cordon or cause is not DrainCause.CORDONED):
            return cause
    return DrainCause.CORDONED if facts.unschedulable and on_cordon else None


def decide(drained: bool, facts: NodeFacts | None, on_cordon: bool = True) -> DrainAction:
    """DRAIN a serving node whose Node says it is going, UNDRAIN a drained one that is back, else NONE (a cordon
    counts only ON_CORDON)."""
    going = drain_cause(facts, on_cordon) is not None
    if going and not drained:
        return DrainAction.DRAIN
    if drained and not going:
        return DrainAction.UNDRAIN
    return DrainAction.NONE

