"""Service created -> ingress IP written, on the lab's real API server: single and a 1,000 burst.

Figures: p50_ms, p99_ms (one Service at a time), burst_per_s (1,000 created at once).
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from kubernetes import watch

from benchmarks._lab import core_api, lab, percentile, report, v6_service
from e2e.lab.testing import pool_manifest

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
    start = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: api.create_namespaced_service(NAMESPACE, v6_service(n, "bench-assign")), names))
    created = time.perf_counter()
    ok = watcher.wait(names, timeout=120)
    done = max(watcher.seen[n] for n in names if n in watcher.seen)
    watcher.stop()
    rate = sum(n in watcher.seen for n in names) / (done - start)
    print(f"burst: {BURST} created in {created - start:.1f} s, all assigned after {done - start:.1f} s "
          f"-> {rate:.0f}/s (complete: {ok})")
    kube.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
    kube.kubectl("delete", "ipaddresspool", "bench-assign", "--wait=false")
    report({"p50_ms": round(percentile(latencies, 50), 1), "p99_ms": round(percentile(latencies, 99), 1),
            "burst_per_s": round(rate, 1), "burst_complete": ok, "single_n": SINGLE, "burst_n": BURST})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
