"""The speaker's Service conditions against the real API server: concurrent writes of different
conditions keep each other, and a condition replaced by someone else is written again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from e2e.lab.config import KUBECONFIG
from e2e.testkit.testing import Kube
from ironlb.api.reasons import AnnounceReason, ConditionType, ForwardingReason, Reason
from ironlb.common import kubeapi
from ironlb.speaker.control import status
from ironlb.speaker.control.status import Said, StatusReporter

pytestmark = pytest.mark.lab
NAME = "status-writes"
ANNOUNCED, FORWARDING = ConditionType.SERVICE_ANNOUNCED.value, ConditionType.SERVICE_FORWARDING.value


def said(message: str, reason: Reason = AnnounceReason.ANNOUNCING) -> Said:
    """A True condition as the reporter computes it."""
    return Said(True, reason, message)


def cond(message: str, reason: Reason = AnnounceReason.ANNOUNCING) -> dict[str, str]:
    """A True condition's status, reason and message as they stand on a Service."""
    return dict(zip(("status", "reason", "message"), said(message, reason).wire(), strict=True))


def conditions(kube: Kube) -> dict[str, tuple[str, str, str]]:
    """The Service's conditions by type: (status, reason, message)."""
    svc = kube.get("service", NAME)
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in svc.get("status", {}).get("conditions", [])}


@pytest.fixture
def api(kube: Kube) -> Iterator[kubeapi.Client]:
    """The speaker's API client for the lab (the lab's client-certificate kubeconfig), and a fresh Service carrying
    an earlier node's conditions."""
    kube.kubectl("delete", "service", NAME, "--ignore-not-found")
    kube.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, "namespace": "default"},
                "spec": {"selector": {"app": NAME}, "ports": [{"port": 80}]}})
    stamp = "2026-01-01T00:00:00Z"
    earlier = [{"type": ANNOUNCED, "lastTransitionTime": stamp, **cond("203.0.113.9 from node node-1")},
               {"type": FORWARDING, "lastTransitionTime": stamp, **cond("via node-1", ForwardingReason.FORWARDING)}]
    kube.kubectl("patch", "service", NAME, "--subresource=status", "--type=merge",
                 "-p", f'{{"status": {{"conditions": {json.dumps(earlier)}}}}}')
    with kubeapi.connect(str(KUBECONFIG)) as api_client:
        yield api_client
    kube.kubectl("delete", "service", NAME, "--ignore-not-found")


async def test_two_conditions_written_from_one_snapshot_both_stand(kube: Kube, api: kubeapi.Client) -> None:
    snapshot = kube.get("service", NAME)
    reporter = StatusReporter(api, "node-2")
    reporter.say(snapshot, ConditionType.SERVICE_ANNOUNCED, said("203.0.113.9 from node node-2"))
    reporter.say(snapshot, ConditionType.SERVICE_FORWARDING, said("via node-2", ForwardingReason.FORWARDING))
    await reporter.flush()
    now = conditions(kube)
    assert now[ANNOUNCED] == ("True", "Announcing", "203.0.113.9 from node node-2")
    assert now[FORWARDING] == ("True", "Forwarding", "via node-2")
    unchanged_status = next(c for c in kube.get("service", NAME)["status"]["conditions"] if c["type"] == ANNOUNCED)
    assert unchanged_status["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # same status: no transition


async def test_a_replaced_condition_is_written_again(kube: Kube, api: kubeapi.Client,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status, "RESAY_AFTER", 3.0)
    asked: list[float] = []
    reporter = StatusReporter(api, "node-2", recheck=asked.append)
    mine = said("203.0.113.9 from node node-2")
    reporter.say(kube.get("service", NAME), ConditionType.SERVICE_ANNOUNCED, mine)
    await reporter.flush()
    assert conditions(kube)[ANNOUNCED][2] == mine.message
    stale = [{"type": ANNOUNCED, "lastTransitionTime": "2026-01-01T00:00:00Z", **cond("from node node-1")}]
    kube.kubectl("patch", "service", NAME, "--subresource=status", "--type=strategic",
                 "-p", f'{{"status": {{"conditions": {json.dumps(stale)}}}}}')
    # Too soon: maybe our write is not seen yet.
    reporter.say(kube.get("service", NAME), ConditionType.SERVICE_ANNOUNCED, mine)
    await reporter.flush()
    assert conditions(kube)[ANNOUNCED][2] == "from node node-1"
    assert asked and 0 < asked[-1] <= 3.0
    await asyncio.sleep(asked[-1] + 0.05)
    reporter.say(kube.get("service", NAME), ConditionType.SERVICE_ANNOUNCED, mine)
    await reporter.flush()
    assert conditions(kube)[ANNOUNCED][2] == mine.message
