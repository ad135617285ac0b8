"""What a lightweight lab node's kubelet would write for IronLB's fencing: its node Lease, renewed on a timer, and its
speaker's Pod, Ready while the speaker's /readyz answers (written only when that changes).

`python -m e2e.probes.nodeagent NODE NAMESPACE POD [--renew S] [--health-url URL]`, run inside the node's network
namespace: it dies with the node (`lab.kill_node`), so the Lease stops as a dead node's does, while a crashed or
stopped speaker on a live node leaves the Lease renewing and its Pod not Ready.
"""

from __future__ import annotations

import argparse
import datetime
import time
import urllib.request
from typing import Any

from ironlb.common import kubeapi
from ironlb.common.kubeapi import LEASES, PODS, ApiError
from ironlb.common.kubeapi import client as kubeapi_client

LEASE_NAMESPACE = "kube-node-lease"
# Not the chart's label: `ironlb doctor` looks for speakers as Pods by that one and would proxy to these, which run
# nothing. The lab's speakers read this selector instead (ironlb_procs.start_speaker).
SELECTOR = "ironlb.io/lab=speaker"
TIMEOUT = (2.0, 5.0)


def now_micro() -> str:
    """The wall time as a MicroTime."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def renew(api: kubeapi.Client, node: str, duration_s: int) -> None:
    """Renew NODE's Lease (create it if missing), as the kubelet does."""
    spec = {"holderIdentity": node, "leaseDurationSeconds": duration_s, "renewTime": now_micro()}
    try:
        api.patch(LEASES, node, {"spec": spec}, LEASE_NAMESPACE, content_type=kubeapi.MERGE, timeout=TIMEOUT)
    except ApiError as exc:
        if exc.status != 404:
            raise
        api.create(LEASES, {"metadata": {"name": node}, "spec": spec}, LEASE_NAMESPACE, timeout=TIMEOUT)


def pod_manifest(name: str, node: str) -> dict[str, Any]:
    """The speaker Pod a DaemonSet would have on NODE (the selector the speakers read by default)."""
    key, _, value = SELECTOR.partition("=")
    return {"metadata": {"name": name, "labels": {key: value}},
            "spec": {"nodeName": node, "hostNetwork": True, "automountServiceAccountToken": False,
                     "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "speaker", "image": "lab.ironlb.io/ironlb:lab"}]}}


def pod_status(ready: bool) -> dict[str, Any]:
    """The status a kubelet writes for the speaker, running and Ready or not."""
    state = {"running": {"startedAt": now_micro()[:19] + "Z"}} if ready else {"waiting": {"reason": "CrashLoopBackOff"}}
    return {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}],
                       "containerStatuses": [{"name": "speaker", "ready": ready, "restartCount": 0, "state": state,
                                              "image": "lab.ironlb.io/ironlb:lab", "imageID": ""}]}}


def ensure_pod(api: kubeapi.Client, namespace: str, name: str, node: str) -> None:
    """Create the speaker's Pod if it is missing."""
    try:
        api.create(PODS, pod_manifest(name, node), namespace, timeout=TIMEOUT)
    except ApiError as exc:
        if exc.status != 409:
            raise


def speaker_ready(url: str) -> bool:
    """The readiness probe: does the speaker's /readyz answer 200?"""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:
            return resp.status == 200
    except OSError:
        return False


def main() -> None:
    """Renew the Lease every --renew seconds, probe the speaker every second; until killed."""
    p = argparse.ArgumentParser()
    p.add_argument("node")
    p.add_argument("namespace")
    p.add_argument("pod")
    p.add_argument("--renew", type=float, default=2.0)
    p.add_argument("--health-url", default="http://127.0.0.1:7474/readyz")
    args = p.parse_args()
    kubeapi_client.USER_AGENT = f"lab-nodeagent/{args.node}"  # its writes are the kubelet's, not IronLB's
    api = kubeapi.connect()
    reported: bool | None = None
    renewed = 0.0
    while True:
        try:
            if time.monotonic() - renewed >= args.renew:
                renew(api, args.node, int(args.renew * 4))
                renewed = time.monotonic()
            ready = speaker_ready(args.health_url)
            if ready != reported:
                ensure_pod(api, args.namespace, args.pod, args.node)
                api.patch(PODS, args.pod, pod_status(ready), args.namespace, subresource="status", timeout=TIMEOUT)
                reported = ready
        except (ApiError, OSError) as exc:  # the API is away (a lab outage): as a kubelet, try again
            print(f"nodeagent {args.node}: {exc}", flush=True)
        time.sleep(1.0)


if __name__ == "__main__":
    main()
