"""Operator restart with many assigned Services: time until it allocates again, IPs changed, RSS.

    python -m benchmarks.restart [--services N]   (default 10,000)

Figures: ready_s, ips_changed (must be 0), rss_mb; on the way, the rates the Services were created and assigned
at. The figure is the operator's, so the run keeps the 2-core lab for it: speakers are paused, and the Services
have no selector (no EndpointSlices). The operator is paused too while the Services are created, so creation
costs only the API server; started again, it assigns them all before the restart is measured.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

from benchmarks._bulk import CreationTooSlow, create_all, ingress_ips
from benchmarks._lab import core_api, lab, report, v6_service
from e2e.lab import ironlb_procs, procs
from e2e.lab.state import load_state
from e2e.testkit.testing import pool_manifest

NAMESPACE = "bench-restart"
POOL = "bench-restart"
ASSIGN_RATE_FLOOR = 50  # Services per second below which the first assignment counts as stuck
# The API server's own rate falls as Services accumulate (each ClusterIP costs more): below this mean rate the
# run stops with how far it got rather than outlast its hold of the lab.
CREATE_RATE_FLOOR = 20
PROGRESS_EVERY_S = 10.0


def assigned(api) -> dict[str, str]:
    """name -> first ingress IP, for every Service in the namespace that has one."""
    return ingress_ips(api, NAMESPACE)


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_assigned(api, count: int) -> tuple[dict[str, str], float]:
    """Every Service's IP once COUNT have one (fewer if the operator falls below the floor rate), and the seconds
    since this call; a progress line now and then."""
    started = time.monotonic()
    deadline = started + max(600, count / ASSIGN_RATE_FLOOR)
    while len(now := assigned(api)) < count and time.monotonic() < deadline:
        elapsed = time.monotonic() - started
        print(f"assigned {len(now)}/{count} in {elapsed:.0f} s ({len(now) / elapsed:.0f}/s)", flush=True)
        time.sleep(min(PROGRESS_EVERY_S, max(2.0, count / 5000)))  # a 50k listing is not free: poll it less
    return now, time.monotonic() - started


def operator_pid() -> int:
    """The operator itself, not the lab's supervisor around it."""
    supervisor = load_state().procs["operator"].pid
    return int(Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()[0])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.restart", description=__doc__.split("\n\n")[0])
    p.add_argument("--services", type=int, default=10_000, help="assigned Services the restart finds")
    p.add_argument("--processes", type=int, default=4, help="processes creating the Services")
    p.add_argument("--threads", type=int, default=8, help="threads in each creating process")
    args = p.parse_args(argv)
    count = args.services
    kube = lab()
    procs.stop_all("speaker-")
    procs.stop("operator")  # paused while the Services are created: creation then costs only the API server
    kube.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=600)
    kube.kubectl("create", "namespace", NAMESPACE)
    kube.apply(pool_manifest(POOL, ["2001:db8:ffff:b::/112"], autoAssign=False))
    api = core_api()
    names = [f"s-{i}" for i in range(count)]
    try:
        create_s = create_all(NAMESPACE, names, partial(v6_service, pool=POOL, selector=False),
                              processes=args.processes, threads=args.threads,
                              timeout_s=max(600, count / CREATE_RATE_FLOOR))
    except CreationTooSlow as exc:
        print(f"creation below {CREATE_RATE_FLOOR}/s: {exc}", file=sys.stderr)
        return 1
    print(f"created {count} Services in {create_s:.1f} s ({count / create_s:.0f}/s)", flush=True)
    ironlb_procs.start_operator()
    before, assign_s = wait_assigned(api, count)
    print(f"{len(before)} assigned {assign_s:.1f} s after the operator started ({len(before) / assign_s:.0f}/s)",
          flush=True)
    if len(before) < count:
        return 1
    rss = rss_mb(operator_pid())
    lab_rss = {f"{name}_rss_mb": round(rss_mb(load_state().procs[name].pid), 1) for name in ("kube-apiserver", "etcd")}
    print(f"with {count} assigned: operator RSS {rss:.0f} MiB, " + ", ".join(f"{k} {v}" for k, v in lab_rss.items()),
          flush=True)
    # Free one address, so a restart that re-allocated carelessly would move someone onto it.
    api.delete_namespaced_service("s-0", NAMESPACE)
    del before["s-0"]
    stop_at = time.monotonic()
    procs.stop("operator")  # the old leader shuts down gracefully and releases its Lease
    restart_at = time.monotonic()
    shutdown_s = restart_at - stop_at
    ironlb_procs.start_operator()
    api.create_namespaced_service(NAMESPACE, v6_service("after-restart", POOL, selector=False))
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
    kube.kubectl("delete", "ipaddresspool", POOL, "--wait=false")
    for name in load_state().node_names:
        ironlb_procs.start_speaker(name)
    report({"ready_s": round(ready_s, 2), "ips_changed": changed, "rss_mb": round(rss, 1), "services": count,
            "old_shutdown_s": round(shutdown_s, 2), "create_per_s": round(count / create_s, 1),
            "assign_per_s": round(count / assign_s, 1), **lab_rss})
    return 0 if changed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
