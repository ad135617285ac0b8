"""The scenarios benchmarks.compare runs against each implementation, identically.

Each takes the Impl (for its pool CRs only) and returns raw figures; the driver names them.
"""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from benchmarks._compare_impls import (
    POOL_ANNOTATION,
    Impl,
    answering_node,
    api_writes,
    cpu_seconds,
    rss_mb,
    run_in_client,
    speaker_pids,
)
from benchmarks._lab import percentile
from benchmarks.assign import WRITERS, IngressWatcher
from e2e.lab import lab as lab_ctl
from e2e.lab import workload
from e2e.lab.config import REPO
from e2e.testkit.testing import Kube, wait_for

NAMESPACE = "bench-compare"  # remade for each implementation
CEILING_NAMESPACE = "bench-compare-ceiling"  # kept across both
VIP_APP = "cmp-vip"
IDLE_APP = "cmp-idle"
NODES = ["node-1", "node-2", "node-3"]
BURST_SETTLE_S = 5.0  # after a burst, before its API writes are counted


@dataclass(frozen=True)
class Sizes:
    """How much work each scenario does (the smoke case shrinks them)."""

    trials: int = 10
    single: int = 100
    burst: int = 300
    idle_services: int = 200
    idle_window_s: float = 60.0
    settle_s: float = 20.0
    prober_s: float = 30.0


def service(name: str, pool: str, app: str, ipv6: bool = False, namespace: str = NAMESPACE) -> dict[str, Any]:
    """The LoadBalancer Service both implementations get: pool by the metallb.io annotation."""
    families = {"ipFamilies": ["IPv6"], "ipFamilyPolicy": "SingleStack"} if ipv6 else {}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "annotations": {POOL_ANNOTATION: pool}},
            "spec": {"type": "LoadBalancer", "selector": {"app": app}, "allocateLoadBalancerNodePorts": False,
                     "ports": [{"port": 80, "targetPort": 8080}], **families}}


def ingress_ip(kube: Kube, name: str) -> str | None:
    """The Service's first ingress IP, if any."""
    svc = kube.get("service", name, NAMESPACE)
    return ((svc.get("status", {}).get("loadBalancer", {}).get("ingress")) or [{}])[0].get("ip")


def setup_vip(kube: Kube, impl: Impl) -> str:
    """A pod on every node and one Service from a small IPv4 pool; its VIP once it answers."""
    kube.apply(*impl.pool(VIP_APP, ["198.51.100.224/30"]))
    kube.apply(service(VIP_APP, VIP_APP, VIP_APP))
    vip = wait_for(lambda: ingress_ip(kube, VIP_APP), timeout=60, what=f"{impl.name}: VIP")
    wait_for(lambda: answering_node(kube, vip), timeout=60, what=f"{impl.name}: {vip} answering the client")
    return vip


def failover_trial(kube: Kube, vip: str, prober_s: float) -> float:
    """failover.py's method: the owner's pod not ready, then a hard kill of the owner node; seconds
    from the kill to the first request answered on a connection opened after it."""
    node = wait_for(lambda: answering_node(kube, vip), timeout=60, what="announcer")
    pod = f"{VIP_APP}-{NODES.index(node)}"
    workload.set_ready(pod, False)  # surviving pods serve; we measure the L2 takeover, not endpoints
    time.sleep(1.5)  # kube-proxy's minSyncPeriod
    wait_for(lambda: answering_node(kube, vip) == node, timeout=20, what="traffic through the owner before the kill")
    # As a context, the Popen closes its pipe and reaps the prober however the loop below ends.
    with subprocess.Popen(["ip", "netns", "exec", "ilb-client", str(REPO / ".venv/bin/python"), "-m",
                           "e2e.probes.prober", vip, "--duration", str(prober_s)], stdout=subprocess.PIPE,
                          text=True, env={"PYTHONPATH": f"{REPO}/src:{REPO}"}) as prober:
        time.sleep(1.0)
        killed = lab_ctl.kill_node(node)  # when its port went down: a connection opened before may still finish
        back = float("inf")
        assert prober.stdout is not None
        for line in prober.stdout:  # stop at the first answer on a connection opened after the kill
            fields = line.split()
            if len(fields) >= 2 and float(fields[0]) > killed:
                back = float(fields[1]) - killed
                break
        prober.terminate()
    lab_ctl.revive_node(node)
    workload.set_ready(pod, True)
    wait_for(lambda: answering_node(kube, vip) == node, timeout=90, interval=0.5,
             what="the revived owner announcing again")
    return back


def arp(vip: str) -> dict[str, Any]:
    """ARP reply latency for VIP at 1,000 requests/s from the client (benchmarks.arp's generator)."""
    out = run_in_client(["e2e.probes.arpload", vip, "--rate", "1000", "--duration", "2"], timeout=60)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _create(api, names: list[str], pool: str, app: str, lb_class: str | None = None,
            namespace: str = NAMESPACE) -> None:
    def one(name: str) -> None:
        body = service(name, pool, app, ipv6=True, namespace=namespace)
        if lb_class:
            body["spec"]["loadBalancerClass"] = lb_class
        api.create_namespaced_service(namespace, body)

    with ThreadPoolExecutor(WRITERS) as workers:
        list(workers.map(one, names))


def assign(kube: Kube, impl: Impl, api, sizes: Sizes, ceiling_names: list[str], tag: int) -> dict[str, float]:
    """Create → ingress latency one at a time; then a pending burst released by its pool, beside
    the services/status write ceiling of a plain client at the same concurrency (benchmarks.assign)."""
    kube.apply(*impl.pool("cmp-single", ["2001:db8:ffff:d::/112"]))
    watcher = IngressWatcher(api, NAMESPACE)
    time.sleep(1)
    latencies = []
    for i in range(sizes.single):
        name = f"single-{i}"
        start = time.perf_counter()
        api.create_namespaced_service(NAMESPACE, service(name, "cmp-single", "none", ipv6=True))
        if not watcher.wait([name], timeout=30):
            raise AssertionError(f"{impl.name}: {name} got no ingress IP within 30 s")
        latencies.append((watcher.seen[name] - start) * 1000)
    names = [f"burst-{i}" for i in range(sizes.burst)]
    _create(api, names, "cmp-burst", "none")  # no such pool yet: every one waits
    time.sleep(3)
    writes_before = api_writes(kube)
    start = time.perf_counter()
    kube.apply(*impl.pool("cmp-burst", ["2001:db8:ffff:e::/112"]))
    complete = watcher.wait(names, timeout=300)
    done = max((watcher.seen[n] for n in names if n in watcher.seen), default=start + 1e-9)
    watcher.stop()
    rate = sum(n in watcher.seen for n in names) / (done - start)
    time.sleep(BURST_SETTLE_S)  # the writes that follow an assignment (speakers' conditions, Events) land
    writes_after = api_writes(kube)
    per_service = {k: round((writes_after.get(k, 0) - writes_before.get(k, 0)) / len(names), 2) for k in writes_after}

    def patch(item: tuple[int, str]) -> None:
        i, name = item  # a new address each run, so every patch is a real write
        body = {"status": {"loadBalancer": {"ingress": [{"ip": f"2001:db8:ffff:c:{tag:x}::{i + 1:x}",
                                                         "ipMode": "VIP"}]}}}
        api.patch_namespaced_service_status(name, CEILING_NAMESPACE, body)

    start = time.perf_counter()
    with ThreadPoolExecutor(WRITERS) as workers:
        list(workers.map(patch, enumerate(ceiling_names)))
    ceiling = len(ceiling_names) / (time.perf_counter() - start)
    return {"assign_p50_ms": percentile(latencies, 50), "assign_p99_ms": percentile(latencies, 99),
            "burst_per_s": rate, "api_write_ceiling_per_s": ceiling, "burst_complete": complete,
            "burst_writes_per_service": {k: v for k, v in sorted(per_service.items()) if v}}


def create_ceiling_services(api, count: int) -> list[str]:
    """Services neither implementation serves (another loadBalancerClass), for the ceiling's patches."""
    names = [f"ceiling-{i}" for i in range(count)]
    _create(api, names, "none", "none", lb_class="bench.example/neither", namespace=CEILING_NAMESPACE)
    return names


def idle(kube: Kube, impl: Impl, api, sizes: Sizes, baseline_by: dict[str, float]) -> dict[str, Any]:
    """IDLE_SERVICES announced Services with endpoints, settled; then over a window: the API
    server's mutating requests (less the lab's baseline), speaker CPU, and speaker RSS after it."""
    kube.apply(*impl.pool(IDLE_APP, ["203.0.113.0/24"]))
    names = [f"idle-{i}" for i in range(sizes.idle_services)]

    def one(name: str) -> None:
        body = service(name, IDLE_APP, IDLE_APP)
        api.create_namespaced_service(NAMESPACE, body)

    with ThreadPoolExecutor(WRITERS) as workers:
        list(workers.map(one, names))
    wait_for(lambda: all(s.status.load_balancer and s.status.load_balancer.ingress
                         for s in api.list_namespaced_service(NAMESPACE).items
                         if s.metadata.name.startswith("idle-")), timeout=180, interval=1,
             what=f"{impl.name}: every idle Service assigned")
    time.sleep(sizes.settle_s)
    pids = speaker_pids(impl)
    writes0, cpu0, t0 = api_writes(kube), {n: cpu_seconds(p) for n, p in pids.items()}, time.monotonic()
    time.sleep(sizes.idle_window_s)
    writes1, t1 = api_writes(kube), time.monotonic()
    cpu = [(cpu_seconds(p) - cpu0[n]) / (t1 - t0) * 100 for n, p in pids.items()]
    by_resource = {k: round((writes1.get(k, 0) - writes0.get(k, 0)) * 60 / (t1 - t0), 1) for k in writes1}
    per_min = sum(by_resource.values())
    # Less the lab's own writes, resource by resource (a baseline blip elsewhere cannot hide these).
    own = sum(max(0.0, v - baseline_by.get(k, 0.0)) for k, v in by_resource.items())
    return {"api_writes_per_min_idle": own, "api_writes_per_min_idle_raw": per_min,
            "api_writes_idle_by_resource": {k: v for k, v in sorted(by_resource.items()) if v},
            "speaker_idle_cpu_pct": sum(cpu) / len(cpu),
            "speaker_rss_mb": sum(rss_mb(p) for p in pids.values()) / len(pids)}


def baseline(kube: Kube, window_s: float, settle_s: float) -> tuple[float, dict[str, float]]:
    """The lab's own mutating requests per minute with neither implementation running, once the
    EndpointSlice controller has caught up with the ceiling's Services."""
    wait_for(lambda: _quiet(kube, "endpointslices"), timeout=300, interval=1, what="endpointslices settled")
    time.sleep(settle_s)
    w0, t0 = api_writes(kube), time.monotonic()
    time.sleep(window_s)
    w1, t1 = api_writes(kube), time.monotonic()
    by_resource = {k: round((w1.get(k, 0) - w0.get(k, 0)) * 60 / (t1 - t0), 1) for k in w1}
    return sum(by_resource.values()), {k: v for k, v in sorted(by_resource.items()) if v}


def _quiet(kube: Kube, resource: str, window_s: float = 5.0) -> bool:
    """True if nobody wrote RESOURCE for WINDOW_S seconds."""
    before = api_writes(kube).get(resource, 0.0)
    time.sleep(window_s)
    return api_writes(kube).get(resource, 0.0) == before
