"""What a client sees when the announcing node dies, on real nodes (`up --kubelet`, IronLB installed by the
chart): a Deployment with a pod on each of three nodes behind a Cluster Service, new connections at 50 Hz and
long-lived ones from the client while the announcing node is killed, then the node revived. Every new
connection is answered again within a second of the kill, not only the VIP's first one. And a rollout of the
speaker DaemonSet, with the client probing throughout, costs no connection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from e2e.lab import lab, reallab
from e2e.lab.config import KUBECONFIG
from e2e.lab.tools import bin_dir
from e2e.testkit import changes, nodedeath
from e2e.testkit.connections import KillFigures, as_dict, figures
from e2e.testkit.testing import Kube

pytestmark = [pytest.mark.lab, pytest.mark.kubelet]
NODES = 3
NAME = "death"
ADDRESSES = "203.0.113.208/29"
REVIVE_ANSWER_S = 30.0


@dataclass(frozen=True)
class Death:
    """One kill of the announcing node and its revive, as the client saw them."""

    node: str
    figures: KillFigures
    revived_pod_answered_s: float | None  # from the revive until the node's pod answered through the VIP


@pytest.fixture(scope="module")
def real() -> Iterator[Kube]:
    """A lab of three real nodes with IronLB installed by helm; taken down afterwards."""
    lab.up(nodes=NODES, kubelet=True)
    try:
        yield Kube(kubeconfig=KUBECONFIG, bin_dir=bin_dir())
    finally:
        lab.down()


@pytest.fixture(scope="module")
def death(real: Kube) -> Death:
    """Kill the announcing node of a Cluster Service while the client probes it for the minute after; revive it."""
    vip = nodedeath.serve(real, NAME, ADDRESSES, "Cluster")
    node = nodedeath.wait_serving(real, NAME, vip, "Cluster")
    pod = nodedeath.pods_by_node(real, NAME)[node]
    try:
        recording, killed = nodedeath.record_kill(vip, node)
    finally:
        answered = nodedeath.revive(real, node, vip, pod, timeout=2 * REVIVE_ANSWER_S)
    return Death(node, figures(recording, killed, {pod}), answered)


def test_every_new_connection_is_answered_within_a_second_of_the_kill(death: Death) -> None:
    seen = json.dumps(as_dict(death.figures))  # a string: pytest shows it whole
    assert death.figures.observed_s >= 60.0, seen  # the probe covered the whole minute
    assert death.figures.vip_moved_s is not None and death.figures.vip_moved_s <= 1.0, seen
    assert death.figures.all_connections_ok_s <= 1.0, seen


def test_few_new_connections_fail(death: Death) -> None:
    assert death.figures.attempts >= 50 * 55  # 50 Hz over the minute: the probe kept its rate
    assert death.figures.failed_connections <= 25, json.dumps(as_dict(death.figures))


def test_the_revived_nodes_pod_answers_through_the_vip_again(death: Death) -> None:
    answered = death.revived_pod_answered_s
    assert answered is not None and answered <= REVIVE_ANSWER_S, (death.node, answered)


@pytest.fixture(scope="module")
def speaker_rollout(real: Kube) -> changes.ChangeFigures:
    """`kubectl rollout restart` of the speaker DaemonSet while the client probes the Cluster Service."""
    vip = nodedeath.serve(real, NAME, ADDRESSES, "Cluster")
    speaker = changes.ironlb_workload(real, "daemonset")
    return changes.observe(real, NAME, vip, "Cluster",
                           lambda: changes.rollout_restart(real, "daemonset", speaker, reallab.NAMESPACE))


def test_a_speaker_rollout_costs_the_client_nothing(speaker_rollout: changes.ChangeFigures) -> None:
    """Each restarting speaker's IPs are answered for with its node's MAC until it is back: nothing moves, so no
    new connection fails and no established one breaks."""
    seen = json.dumps(changes.as_dict(speaker_rollout))
    assert speaker_rollout.completed, seen
    # The probe kept its rate (50 Hz) through the rollout and the settling after it.
    assert speaker_rollout.attempts >= 45 * (speaker_rollout.change_s + changes.SETTLE_S), seen
    assert speaker_rollout.failed_connections == 0, seen
    assert speaker_rollout.long_lived_broken == {"gone_pod": 0, "other": 0}, seen
