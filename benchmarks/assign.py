"""Service created -> ingress IP written, on the lab's real API server: single, and a 1,000 burst.

The burst measures the operator, not the API server's create rate: 1,000 Services are created
while no pool serves them (they wait, pending), then their pool appears and the clock runs until
every one shows an IP. In the same run, the ceiling: a plain client patching services/status of
1,000 other Services (another loadBalancerClass, so IronLB leaves them alone) with the same
concurrency as the operator's writer.

Figures: p50_ms, p99_ms (one Service at a time), burst_per_s, api_write_ceiling_per_s,
burst_ratio (burst ÷ ceiling; the operator writes twice per Service: annotation, then status).
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from kubernetes import watch

from benchmarks._lab import core_api, lab, percentile, report, v6_service
from e2e.testkit.testing import pool_manifest

NAMESPACE = "bench-assign"
SINGLE = 100
BURST = 1000


class IngressWatcher:
    """Records when each Service first shows an ingress IP (a watch, not polling)."""

    def __init__(self, api, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            stream = watch.Watch()
            for ev in stream.stream(self.api.list_namespaced_service, self.namespace, timeout_seconds=60):
                svc = ev["object"]
                lb = svc.status.load_balancer
                if lb and lb.ingress and svc.metadata.name not in self.seen:
                    with self.cond:
                        self.seen[svc.metadata.name] = time.perf_counter()
                        self.cond.notify_all()
                if self._stop:
                    break

    def wait(self, names: list[str], timeout: float) -> bool:
        """Wait until every name was seen with an ingress IP."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all(n in self.seen for n in names):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def stop(self) -> None:
        """Stop watching."""
        self._stop = True


WRITERS = 16  # the operator's writer concurrency (ironlb.operator.writer)


def create_all(api, names: list[str], pool: str, lb_class: str | None = None) -> None:
    """Create Services NAMES from POOL, WRITERS at a time."""
    def create(name: str) -> None:
        body = v6_service(name, pool)
        if lb_class:
            body["spec"]["loadBalancerClass"] = lb_class
        api.create_namespaced_service(NAMESPACE, body)

    with ThreadPoolExecutor(WRITERS) as workers:
        list(workers.map(create, names))


def write_ceiling(api) -> float:
    """services/status patches per second a plain client gets, WRITERS at a time, on Services not IronLB's."""
    names = [f"ceiling-{i}" for i in range(BURST)]
    create_all(api, names, "none", lb_class="bench.example/not-ironlb")

    def patch(item: tuple[int, str]) -> None:
        i, name = item
        body = {"status": {"loadBalancer": {"ingress": [{"ip": f"2001:db8:ffff:c::{i + 1:x}", "ipMode": "VIP"}]}}}
        api.patch_namespaced_service_status(name, NAMESPACE, body)

    start = time.perf_counter()
    with ThreadPoolExecutor(WRITERS) as workers:
        list(workers.map(patch, enumerate(names)))
    return len(names) / (time.perf_counter() - start)


def main() -> int:
    """Run the benchmark and print the figures."""
    kube = lab()
    kube.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=180)
    kube.kubectl("create", "namespace", NAMESPACE)
    kube.apply(pool_manifest("bench-assign", ["2001:db8:ffff:a::/112"], autoAssign=False))
    api = core_api()
    watcher = IngressWatcher(api, NAMESPACE)
    time.sleep(1)
    latencies = []
    for i in range(SINGLE):
        name = f"single-{i}"
        start = time.perf_counter()
        api.create_namespaced_service(NAMESPACE, v6_service(name, "bench-assign"))
        if not watcher.wait([name], timeout=10):
            print(f"{name}: no ingress within 10 s", file=sys.stderr)
            return 1
        latencies.append((watcher.seen[name] - start) * 1000)
    print(f"single: p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms")
    names = [f"burst-{i}" for i in range(BURST)]
    create_all(api, names, "bench-assign-burst")  # no such pool yet: every one waits
    time.sleep(3)  # let the operator see them all and record them as pending
    start = time.perf_counter()
    kube.apply(pool_manifest("bench-assign-burst", ["2001:db8:ffff:b::/112"], autoAssign=False))
    ok = watcher.wait(names, timeout=300)
    done = max(watcher.seen[n] for n in names if n in watcher.seen)
    watcher.stop()
    rate = sum(n in watcher.seen for n in names) / (done - start)
    ceiling = write_ceiling(api)
    print(f"burst: all {BURST} assigned {done - start:.1f} s after their pool appeared -> {rate:.0f}/s "
          f"(complete: {ok}); a plain client patches services/status at {ceiling:.0f}/s")
    kube.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
    kube.kubectl("delete", "ipaddresspool", "bench-assign", "bench-assign-burst", "--wait=false")
    report({"p50_ms": round(percentile(latencies, 50), 1), "p99_ms": round(percentile(latencies, 99), 1),
            "burst_per_s": round(rate, 1), "api_write_ceiling_per_s": round(ceiling, 1),
            "burst_ratio": round(rate / ceiling, 2), "burst_complete": ok, "single_n": SINGLE, "burst_n": BURST})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
