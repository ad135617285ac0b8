"""Operator restart with many assigned Services: time until it allocates again, IPs changed, RSS.

    python -m benchmarks.restart [--services N]   (default 10,000)

Figures: ready_s, ips_changed (must be 0), rss_mb. The figure is the operator's, so the run keeps
the 2-core lab for it: speakers are paused, and the Services have no selector (no EndpointSlices).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks._lab import core_api, lab, report, v6_service
from e2e.lab import ironlb_procs, procs
from e2e.lab.state import load_state
from e2e.testkit.testing import pool_manifest

NAMESPACE = "bench-restart"
ASSIGN_RATE_FLOOR = 50  # Services per second below which the first assignment counts as stuck


def assigned(api) -> dict[str, str]:
    """name -> first ingress IP, for every Service in the namespace that has one."""
    out: dict[str, str] = {}
    cont = None
    while True:
        page = api.list_namespaced_service(NAMESPACE, limit=2000, _continue=cont)
        for svc in page.items:
            lb = svc.status.load_balancer
            if lb and lb.ingress:
                out[svc.metadata.name] = lb.ingress[0].ip
        cont = page.metadata._continue
        if not cont:
            return out


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.restart", description=__doc__.split("\n\n")[0])
    p.add_argument("--services", type=int, default=10_000, help="assigned Services the restart finds")
    count = p.parse_args(argv).services
    kube = lab()
    procs.stop_all("speaker-")
    kube.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=600)
    kube.kubectl("create", "namespace", NAMESPACE)
    kube.apply(pool_manifest("bench-restart", ["2001:db8:ffff:b::/112"], autoAssign=False))
    api = core_api()
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: api.create_namespaced_service(
            NAMESPACE, v6_service(f"s-{i}", "bench-restart", selector=False)), range(count)))
    print(f"created {count} Services in {time.monotonic() - started:.1f} s")
    deadline = time.monotonic() + max(600, count / ASSIGN_RATE_FLOOR)
    while len(before := assigned(api)) < count and time.monotonic() < deadline:
        time.sleep(2)
    print(f"{len(before)} assigned after {time.monotonic() - started:.1f} s")
    if len(before) < count:
        return 1
    supervisor = load_state().procs["operator"].pid
    pid = int(Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()[0])
    rss = rss_mb(pid)  # the operator itself, not the lab's supervisor around it
    # Free one address, so a restart that re-allocated carelessly would move someone onto it.
    api.delete_namespaced_service("s-0", NAMESPACE)
    del before["s-0"]
    stop_at = time.monotonic()
    procs.stop("operator")  # the old leader shuts down gracefully and releases its Lease
    restart_at = time.monotonic()
    shutdown_s = restart_at - stop_at
    ironlb_procs.start_operator()
    api.create_namespaced_service(NAMESPACE, v6_service("after-restart", "bench-restart", selector=False))
    while True:
        svc = api.read_namespaced_service("after-restart", NAMESPACE)
        if svc.status.load_balancer and svc.status.load_balancer.ingress:
            break
        if time.monotonic() - restart_at > 120:
            print("no allocation within 120 s of restart", file=sys.stderr)
            return 1
        time.sleep(0.05)
    ready_s = time.monotonic() - restart_at
    after = assigned(api)
    changed = sum(1 for name, ip in before.items() if after.get(name) != ip)
    print(f"restart: old operator stopped in {shutdown_s:.2f} s; new one allocating {ready_s:.2f} s after its "
          f"start; {changed} IPs changed; RSS {rss:.0f} MiB")
    kube.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
    kube.kubectl("delete", "ipaddresspool", "bench-restart", "--wait=false")
    for name in load_state().node_names:
        ironlb_procs.start_speaker(name)
    report({"ready_s": round(ready_s, 2), "ips_changed": changed, "rss_mb": round(rss, 1), "services": count,
            "old_shutdown_s": round(shutdown_s, 2)})
    return 0 if changed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
