"""When the speaker's own Node makes it drain its BGP routes, and when it announces again: a scenario table."""

from __future__ import annotations

from typing import Any

import pytest

from ironlb.core.bgp.nodedrain import DrainAction, DrainCause, NodeFacts, decide, drain_cause


def node(unschedulable: Any = None, *taints: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"taints": [{"key": k, "effect": "NoSchedule"} for k in taints]}
    if unschedulable is not None:
        spec["unschedulable"] = unschedulable
    return {"metadata": {"name": "n1"}, "spec": spec}


@pytest.mark.parametrize(("obj", "cause"), [
    (node(), None),
    (node(False), None),
    (node(True), DrainCause.CORDONED),  # kubectl cordon, and kubectl drain's first step
    (node("true"), None),  # only a boolean true is a cordon
    (node(None, "node.kubernetes.io/unschedulable"), DrainCause.CORDONED),  # the controller's mirror of it
    (node(None, "node.kubernetes.io/out-of-service"), DrainCause.OUT_OF_SERVICE),
    (node(None, "node.cloudprovider.kubernetes.io/shutdown"), DrainCause.CLOUD_SHUTDOWN),
    (node(None, "ToBeDeletedByClusterAutoscaler"), DrainCause.TO_BE_DELETED),
    (node(True, "node.kubernetes.io/out-of-service"), DrainCause.OUT_OF_SERVICE),  # the stronger word wins
    (node(None, "node.kubernetes.io/not-ready"), None),  # the kubelet's trouble, not the node's network
    (node(None, "node.kubernetes.io/unreachable"), None),
    (node(None, "dedicated"), None),
    ({"metadata": {"name": "n1"}}, None),
    ({"metadata": {"name": "n1"}, "spec": {"taints": [None, {"effect": "NoSchedule"}]}}, None),
])
def test_the_cause_a_node_gives(obj: dict[str, Any], cause: DrainCause | None) -> None:
    assert drain_cause(NodeFacts.of(obj)) is cause


def test_a_deleted_node_drains() -> None:
    assert drain_cause(None) is DrainCause.NODE_DELETED
    assert drain_cause(None, on_cordon=False) is DrainCause.NODE_DELETED


@pytest.mark.parametrize(("obj", "cause"), [
    (node(True), None),  # a maintenance cordon: the node keeps serving
    (node(None, "node.kubernetes.io/unschedulable"), None),  # nor the controller's mirror of the cordon
    (node(True, "node.kubernetes.io/unschedulable", "node.kubernetes.io/out-of-service"), DrainCause.OUT_OF_SERVICE),
    (node(None, "node.cloudprovider.kubernetes.io/shutdown"), DrainCause.CLOUD_SHUTDOWN),
    (node(True, "ToBeDeletedByClusterAutoscaler"), DrainCause.TO_BE_DELETED),
])
def test_the_cause_with_the_cordon_trigger_off(obj: dict[str, Any], cause: DrainCause | None) -> None:
    assert drain_cause(NodeFacts.of(obj), on_cordon=False) is cause


@pytest.mark.parametrize(("drained", "obj", "on_cordon", "action"), [
    (False, node(), True, DrainAction.NONE),
    (False, node(True), True, DrainAction.DRAIN),
    (True, node(True), True, DrainAction.NONE),  # still cordoned: already drained
    (True, node(False), True, DrainAction.UNDRAIN),  # uncordoned
    (True, node(None, "ToBeDeletedByClusterAutoscaler"), True, DrainAction.NONE),  # another cause, still drained
    (False, None, True, DrainAction.DRAIN),  # the Node deleted
    (True, None, True, DrainAction.NONE),
    (False, node(True), False, DrainAction.NONE),  # the cordon trigger off: a cordon alone does not drain
    (True, node(True), False, DrainAction.UNDRAIN),  # drained by a taint now gone, still cordoned: back
    (False, node(True, "node.kubernetes.io/out-of-service"), False, DrainAction.DRAIN),  # the taints still do
    (False, None, False, DrainAction.DRAIN),
])
def test_what_the_speaker_does(drained: bool, obj: dict[str, Any] | None, on_cordon: bool,
                               action: DrainAction) -> None:
    assert decide(drained, None if obj is None else NodeFacts.of(obj), on_cordon) is action
