"""The speaker's own API client against the real API server: presence (node Leases, speaker Pods), heartbeat
keys, Events, informers (paged lists, watches), and errors as the server words them. (A 410 is hard to provoke
here: the watch cache serves old versions and continue tokens past an etcd compaction; the unit tests feed the
client real 410 bodies.)"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import pytest

from e2e.lab.config import KUBECONFIG
from e2e.testkit.testing import Kube, wait_for
from ironlb.common import informer as informer_mod
from ironlb.common import kubeapi
from ironlb.common.events import EventNotFound, KubeEventSink
from ironlb.common.informer import Informer, ResourceListWatch
from ironlb.common.kubeapi import CONFIGMAPS, EVENTS, LEASES, PODS, SECRETS, ApiError
from ironlb.speaker.control.keys import KeyWatcher, read_key
from ironlb.speaker.control.presence import HEARS_PEERS, Presence, Report
from ironlb.speaker.fast.liveness.protocol import KeySet

pytestmark = pytest.mark.lab
NS = "speaker-api"


@pytest.fixture
def api(kube: Kube) -> Iterator[kubeapi.Client]:
    """The speaker's client on the lab's kubeconfig (client certificates), in a namespace emptied for the test."""
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube.kubectl("delete", "configmaps,secrets,events,pods,leases", "--all", "-n", NS, "--grace-period=0", "--force")
    with kubeapi.connect(str(KUBECONFIG)) as client:
        yield client


def speaker_pod(api: kubeapi.Client, node: str, ready: bool) -> None:
    """A speaker Pod on NODE whose status the test writes as a kubelet would (the lab's nodes run none)."""
    name = f"speaker-{node}"
    api.create(PODS, {"metadata": {"name": name, "labels": {"app": "speaker"}},
                      "spec": {"nodeName": node, "containers": [{"name": "speaker", "image": "lab.ironlb.io/none"}]}},
               NS)
    state = {"running": {"startedAt": "2026-01-01T00:00:00Z"}} if ready else {"waiting": {"reason": "CrashLoopBackOff"}}
    api.patch(PODS, name, {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}],
                                      "containerStatuses": [{"name": "speaker", "ready": ready, "restartCount": 0,
                                                             "image": "lab.ironlb.io/none", "imageID": "",
                                                             "state": state}]}}, NS, subresource="status")


def test_presence_reads_leases_and_running_speakers_and_reports_on_its_own_pod(api: kubeapi.Client) -> None:
    for node in ("node-1", "node-2", "node-3"):  # node Leases kept in the test's namespace
        api.create(LEASES, {"metadata": {"name": node}, "spec": {"holderIdentity": node,
                                                                 "renewTime": "2026-01-01T00:00:00.000000Z"}}, NS)
    speaker_pod(api, "node-1", ready=True)
    speaker_pod(api, "node-2", ready=True)
    speaker_pod(api, "node-3", ready=False)  # crashed on a live node
    one = Presence(api, NS, "speaker-node-1", lambda: 2, selector="app=speaker", lease_namespace=NS)
    assert one.report() is Report.WRITTEN
    two = Presence(api, NS, "speaker-node-2", lambda: 0, selector="app=speaker", lease_namespace=NS)
    assert two.report() is Report.WRITTEN
    assert one.read() == {"node-1": ("2026-01-01T00:00:00.000000Z", 1), "node-2": ("2026-01-01T00:00:00.000000Z", 0)}
    conditions = api.get(PODS, "speaker-node-1", NS)["status"]["conditions"]
    assert {c["type"] for c in conditions} == {"Ready", HEARS_PEERS}  # merged by type: the kubelet's stays


def test_errors_carry_the_servers_status_and_message(api: kubeapi.Client) -> None:
    with pytest.raises(ApiError) as err:
        api.get(CONFIGMAPS, "absent", NS)
    assert (err.value.status, err.value.status_reason) == (404, "NotFound")
    assert '"absent" not found' in err.value.message
    api.create(CONFIGMAPS, {"metadata": {"name": "twice"}}, NS)
    with pytest.raises(ApiError) as err:
        api.create(CONFIGMAPS, {"metadata": {"name": "twice"}}, NS)
    assert (err.value.status, err.value.status_reason) == (409, "AlreadyExists")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def test_heartbeat_keys_are_read_and_followed(api: kubeapi.Client) -> None:
    first, second = b"a" * 32, b"b" * 32
    api.create(SECRETS, {"metadata": {"name": "hb"}, "data": {"key": b64(first)}}, NS)
    keys = await read_key(api, NS, "hb", "key")
    assert keys.send == first
    changes: list[KeySet] = []
    watcher = KeyWatcher(api, NS, "hb", "key", changes.append, keys)
    watcher.start()
    try:
        assert watcher.informer is not None
        await asyncio.wait_for(watcher.informer.synced.wait(), 10)
        api.patch(SECRETS, "hb", {"data": {"key": b64(second), "previous": b64(first)}}, NS)
        await asyncio.to_thread(wait_for, lambda: changes or None, 10)
    finally:
        watcher.stop()
    assert changes[-1].send == second and first in changes[-1].accepted


def test_events_are_created_then_patched_and_a_missing_one_is_said(api: kubeapi.Client) -> None:
    sink = KubeEventSink(api)
    body = {"metadata": {"name": "web.1", "namespace": NS}, "reason": "NodeAssigned", "message": "on node-1",
            "type": "Normal", "count": 1, "involvedObject": {"apiVersion": "v1", "kind": "Service", "name": "web",
                                                             "namespace": NS},
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
            "source": {"component": "ironlb-speaker", "host": "node-1"}}
    sink.create(NS, body)
    sink.patch(NS, "web.1", {"count": 2, "lastTimestamp": "2026-01-01T00:00:05Z", "message": "on node-1 again"})
    event = api.get(EVENTS, "web.1", NS)
    assert (event["count"], event["message"]) == (2, "on node-1 again")
    with pytest.raises(EventNotFound):
        sink.patch(NS, "expired.1", {"count": 3})


async def test_an_informer_lists_in_pages_and_follows_changes(api: kubeapi.Client,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer_mod, "PAGE_SIZE", 2)
    for i in range(5):
        api.create(CONFIGMAPS, {"metadata": {"name": f"cm-{i}", "labels": {"set": "x"}}, "data": {"v": "0"}}, NS)
    seen: list[tuple[str, str]] = []
    source = ResourceListWatch(api, CONFIGMAPS, NS, labelSelector="set=x")
    inf = Informer("configmaps", source, lambda kind, o: seen.append((kind, o["metadata"]["name"])),
                   asyncio.get_running_loop())
    inf.start()
    try:
        await asyncio.wait_for(inf.synced.wait(), 10)
        await asyncio.sleep(0.05)
        assert sorted(seen) == [("ADDED", f"cm-{i}") for i in range(5)]
        api.patch(CONFIGMAPS, "cm-1", {"data": {"v": "1"}}, NS)
        api.delete(CONFIGMAPS, "cm-2", NS)
        api.create(CONFIGMAPS, {"metadata": {"name": "not-in-set"}}, NS)
        await asyncio.to_thread(wait_for, lambda: len(seen) >= 7 or None, 10)
    finally:
        inf.stop()
    assert seen[5:] == [("MODIFIED", "cm-1"), ("DELETED", "cm-2")]
    assert inf.counts["lists"] == 1 and inf.counts["errors"] == 0
