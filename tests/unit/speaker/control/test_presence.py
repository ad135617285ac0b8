"""Peers' presence from node Leases and speaker Pods: what counts as a live peer, and how a speaker reports
whether it hears peers (only when that changes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from ironlb.common.kubeapi import LEASES, PODS, ApiError, Resource
from ironlb.speaker.control import presence as presence_mod
from ironlb.speaker.control.fencing import ApiProbe, Evidence, Fence, FenceDecision
from ironlb.speaker.control.presence import (
    HEARS_PEERS,
    Peer,
    Presence,
    Report,
    SpeakerPod,
    evidence,
    peers,
    speaker_pod,
)


def lease(node: str, renewed: str | None) -> dict[str, Any]:
    return {"metadata": {"name": node}, "spec": {"holderIdentity": node, **({"renewTime": renewed} if renewed else {})}}


def pod(node: str, *, ready: bool = True, running: bool = True, hears: bool | None = True, deleting: bool = False,
        name: str = "") -> dict[str, Any]:
    """A speaker Pod as the kubelet (Ready, containerStatuses) and its speaker (HearsPeers) leave it."""
    conditions = [{"type": "Ready", "status": str(ready)}]
    if hears is not None:
        conditions.append({"type": HEARS_PEERS, "status": str(hears)})
    state = {"running": {"startedAt": "t"}} if running else {"waiting": {"reason": "CrashLoopBackOff"}}
    return {"metadata": {"name": name or f"speaker-{node}", **({"deletionTimestamp": "t"} if deleting else {})},
            "spec": {"nodeName": node},
            "status": {"phase": "Running", "conditions": conditions,
                       "containerStatuses": [{"name": "speaker", "ready": ready and running, "state": state}]}}


POD_CASES = [
    ("ready and running", pod("n2"), SpeakerPod.RUNNING),
    ("crashed: the kubelet shows it waiting to restart", pod("n2", ready=False, running=False), SpeakerPod.NOT_READY),
    ("running but failing its readiness probe", pod("n2", ready=False), SpeakerPod.NOT_READY),
    ("being deleted", pod("n2", deleting=True), SpeakerPod.TERMINATING),
    ("not scheduled", {**pod("n2"), "spec": {}}, SpeakerPod.UNSCHEDULED),
    ("no container status yet", {**pod("n2"), "status": {"phase": "Pending"}}, SpeakerPod.NOT_READY),
]


@pytest.mark.parametrize(("case", "obj", "want"), POD_CASES, ids=[c[0] for c in POD_CASES])
def test_speaker_pod(case: str, obj: dict[str, Any], want: SpeakerPod) -> None:
    assert speaker_pod(obj) is want


def test_a_peer_needs_a_renewed_node_lease_and_a_running_speaker() -> None:
    leases = [lease("n1", "t1"), lease("n2", "t2"), lease("n3", "t3"), lease("n4", None)]
    pods = [pod("n1", hears=False), pod("n2", ready=False, running=False), pod("n4"), pod("n5"),
            pod("n3", ready=False, name="old"), pod("n3", hears=None, name="new")]
    found = peers(leases, pods)
    assert found == {"n1": Peer("t1", SpeakerPod.RUNNING, False), "n2": Peer("t2", SpeakerPod.NOT_READY, True),
                     "n3": Peer("t3", SpeakerPod.RUNNING, False)}  # n4: no renewal; n5: no Lease
    assert evidence(found) == {"n1": ("t1", 0), "n3": ("t3", 0)}


def test_a_crashed_speaker_on_a_live_node_is_not_a_live_peer() -> None:
    """n2's kubelet keeps renewing its node Lease, but its speaker crashed: the isolated-looking n1 must
    not take n2 for a group that lives on without it, so it keeps its IPs (the last survivor)."""
    fence = Fence(me="n1", grace=0.0)
    crashed = [pod("n2", ready=False, running=False), pod("n3", ready=False, running=False)]
    decisions = []
    for t, renewal in enumerate(["t1", "t2", "t3"]):
        probe = Evidence(ApiProbe.REACHABLE, evidence(peers([lease("n2", renewal), lease("n3", renewal)], crashed)))
        decisions.append(fence.observe(float(t), 2, 0, True, probe))
    assert decisions == [FenceDecision.PEERS_DEAD] * 3
    # The same renewals with the speakers running and hearing each other: n1 is the isolated one.
    fence = Fence(me="n1", grace=0.0)
    running = [pod("n2"), pod("n3")]
    decisions = [fence.observe(float(t), 2, 0, True,
                               Evidence(ApiProbe.REACHABLE, evidence(peers([lease("n2", r), lease("n3", r)], running))))
                 for t, r in enumerate(["t1", "t2"])]
    assert decisions == [FenceDecision.PEERS_DEAD, FenceDecision.FENCE_PEERS_ALIVE]


class FakeApi:
    """The API client's Lease and Pod calls, on objects held in memory."""

    def __init__(self) -> None:
        self.leases = [lease("n2", "t1")]
        self.pods = [pod("n2")]
        self.patches: list[dict[str, Any]] = []
        self.fail: Exception | None = None
        self.failed = 0

    def list(self, resource: Resource, namespace: str, **kw: Any) -> dict[str, Any]:
        assert kw["timeout"]
        if resource == LEASES:
            assert namespace == "kube-node-lease"
            return {"items": self.leases}
        assert resource == PODS and namespace == "ns" and kw["labelSelector"] == "app=speaker"
        return {"items": self.pods}

    def patch(self, resource: Resource, name: str, body: dict, namespace: str, **kw: Any) -> dict[str, Any]:
        assert resource == PODS and name == "speaker-n1" and kw["subresource"] == "status" and kw["timeout"]
        if self.fail is not None:
            self.failed += 1
            raise self.fail
        self.patches.append(body)
        return {}


async def until(done: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until DONE holds, polling; bounded so that a loaded machine does not decide the test."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done() and loop.time() < deadline:
        await asyncio.sleep(0.005)


def presence(api: FakeApi, heard: list[int]) -> Presence:
    return Presence(api, "ns", "speaker-n1", lambda: heard[0], selector="app=speaker")  # type: ignore[arg-type]


def test_read_gives_the_peers_whose_speaker_runs() -> None:
    api = FakeApi()
    assert presence(api, [0]).read() == {"n2": ("t1", 1)}


def test_the_condition_is_written_only_when_it_changes() -> None:
    api, heard = FakeApi(), [2]
    p = presence(api, heard)
    assert [p.report(), p.report()] == [Report.WRITTEN, Report.CURRENT]
    heard[0] = 1
    assert p.report() is Report.CURRENT  # still hears peers: nothing to say
    heard[0] = 0
    assert p.report() is Report.WRITTEN
    assert [b["status"]["conditions"][0]["status"] for b in api.patches] == ["True", "False"]
    assert {b["status"]["conditions"][0]["type"] for b in api.patches} == {HEARS_PEERS}


def test_a_failed_report_says_whether_to_try_again() -> None:
    api, heard = FakeApi(), [1]
    p = presence(api, heard)
    api.fail = ApiError(404, "Not Found")
    assert p.report() is Report.REFUSED and p.reported is None
    api.fail = ApiError(503, "Service Unavailable")
    assert p.report() is Report.UNREACHABLE
    api.fail = TimeoutError("read timed out")
    assert p.report() is Report.UNREACHABLE and p.failures == 3
    api.fail = None
    assert p.report() is Report.WRITTEN and p.reported is True
    assert Presence(api, "ns", "", lambda: 1).report() is Report.CURRENT  # type: ignore[arg-type]  # no Pod: silent


def test_nudges_write_on_change_only_and_an_unreachable_api_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presence_mod, "MIN_WRITE_GAP_S", 0.0)
    monkeypatch.setattr(presence_mod, "RETRY_S", 0.05)
    api, heard = FakeApi(), [1]
    p = presence(api, heard)

    async def scenario() -> list[int]:
        task = asyncio.create_task(p.run())
        counts = []
        await asyncio.sleep(0.01)  # reported at start, unasked
        counts.append(len(api.patches))
        for _ in range(3):  # the same value, nudged again and again: no more writes
            p.nudge()
            await asyncio.sleep(0.01)
        counts.append(len(api.patches))
        api.fail, heard[0] = TimeoutError("read timed out"), 0
        p.nudge()
        await until(lambda: api.failed > 0)
        api.fail = None
        counts.append(len(api.patches))
        await until(lambda: len(api.patches) > 1)  # the retry lands
        counts.append(len(api.patches))
        task.cancel()
        return counts

    assert asyncio.run(scenario()) == [1, 1, 1, 2]
