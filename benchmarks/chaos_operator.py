"""Operator chaos: two replicas under churn, the active one SIGKILLed at random moments.

`python -m benchmarks.chaos_operator [--kills N] [--interval S] [--api-restarts K] [--seed X]`

On the lab: two supervised operator replicas (each restart is a new incarnation with a new Lease
identity, as a rescheduled pod would be), a continuous churn of creates, updates (pool, requested
IP, sharing key, type) and deletes, and edits of one pool's size. Every few seconds the replica
holding the Lease is SIGKILLed. etcd is compacted every 10 s and, with --api-restarts, the API
server is restarted, so watches meet 410 Gone. An independent checker (e2e.testkit.invariants) watches
every version of every Service. Bounded: it stops after N kills and a convergence wait.

Last line, JSON: kills, duplicate_ip_samples, ips_changed_untouched, not_converged,
converge_p50_s, converge_p95_s, api_restarts, watch_410s, ops.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks._lab import lab, percentile, report
from e2e.lab import ironlb_procs, procs
from e2e.lab import lab as lab_ctl
from e2e.lab.config import ETCD_CLIENT_PORT, REPO
from e2e.testkit.invariants import DuplicateIPChecker, Shown
from e2e.testkit.testing import Kube, pool_manifest, wait_for

NS = "chaos"
REPLICAS = {"chaos-op-a": 7481, "chaos-op-b": 7482}
MAIN, ALT, FIXED = "chaos-main", "chaos-alt", "chaos-fixed"
MAIN_RANGE, FIXED_RANGE = "203.0.113.0/26", "203.0.113.64/26"
ALT_RANGES = ("198.51.100.0/26", "198.51.100.0/27")  # grown and shrunk during the run
UNTOUCHED, CHURNED = 20, 24
Predicate = Callable[[Shown | None], bool]


def in_range(cidr: str) -> Predicate:
    """Shows exactly one IP, inside CIDR."""
    net = ipaddress.ip_network(cidr)
    return lambda s: s is not None and len(s.ips) == 1 and ipaddress.ip_address(s.ips[0]) in net


def shows_nothing(s: Shown | None) -> bool:
    """Shows no IP (or is gone)."""
    return s is None or not s.ips


def service(name: str, annotations: dict[str, str], lb: bool = True) -> dict[str, Any]:
    """A Service in the chaos namespace."""
    spec: dict[str, Any] = {"type": "LoadBalancer" if lb else "ClusterIP", "selector": {"app": name},
                            "ports": [{"port": 80, "targetPort": 8080}]}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS,
                                                                "annotations": annotations}, "spec": spec}


@dataclass
class Expectations:
    """What each Service should show after the latest change to it, and how long that took."""

    shown: dict[str, Shown]  # the checker's live view
    pending: dict[str, tuple[float, Predicate]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, key: str, predicate: Predicate) -> None:
        """From now on KEY should come to satisfy PREDICATE (supersedes an earlier expectation).

        A change whose outcome is already shown (a delete, a re-apply) is not timed: only the
        work the operator has to do counts in the convergence figures."""
        with self.lock:
            self.pending.pop(key, None)
            if not predicate(self.shown.get(key)):
                self.pending[key] = (time.monotonic(), predicate)

    def check(self, shown: dict[str, Shown]) -> None:
        """Record every expectation the checker's view now satisfies."""
        now = time.monotonic()
        with self.lock:
            for key, (since, predicate) in list(self.pending.items()):
                if predicate(shown.get(key)):
                    self.latencies.append(now - since)
                    del self.pending[key]


class Replicas:
    """Two supervised operator replicas beside the API server."""

    def start(self) -> None:
        """Stop the lab's own operator and start both replicas (short Lease: failover in seconds)."""
        procs.stop_all("operator")
        env = {**ironlb_procs.ironlb_env(), "IRONLB_LEASE_DURATION": "3", "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
        for name, port in REPLICAS.items():
            procs.spawn(name, [sys.executable, "-m", "e2e.probes.supervise", "--", sys.executable, "-m",
                               "ironlb.operator", "--metrics-port", str(port)], env=env)

    def stop(self) -> None:
        """Stop both replicas and give the lab its own operator back."""
        for name in REPLICAS:
            procs.stop(name)
        ironlb_procs.start_operator()

    @staticmethod
    def metrics(port: int) -> str:
        """The replica's /metrics text ('' if it does not answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=0.5) as resp:
                return resp.read().decode()
        except OSError:
            return ""

    def leader(self) -> str | None:
        """The replica that says it leads."""
        return next((n for n, p in REPLICAS.items() if "ironlb_operator_leader 1.0" in self.metrics(p)), None)

    def kill_leader(self, attempts: int = 40) -> bool:
        """SIGKILL the leading replica's operator process (its supervisor restarts it); True if killed."""
        for _ in range(attempts):
            name = self.leader()
            entry = procs.running(name).get(name) if name else None
            if entry:
                children = subprocess.run(["pgrep", "-P", str(entry.pid)], capture_output=True, text=True)
                pids = [int(p) for p in children.stdout.split()]
                if pids:
                    subprocess.run(["kill", "-KILL", *map(str, pids)], check=False)
                    return True
            time.sleep(0.25)
        return False

    def watch_410s(self) -> int:
        """410s the live replicas' informers have met (a killed incarnation's count is lost)."""
        total = 0
        for port in REPLICAS.values():
            found = re.search(r"^ironlb_watch_gone_total (\d+)", self.metrics(port), re.M)
            total += int(found.group(1)) if found else 0
        return total


def compact_etcd() -> None:
    """Compact etcd at its current revision: watchers resuming from older versions get 410 Gone."""
    base = f"http://127.0.0.1:{ETCD_CLIENT_PORT}/v3/kv"

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(f"{base}/{path}", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    revision = post("range", {"key": "AA=="})["header"]["revision"]
    post("compaction", {"revision": revision})


def restart_apiserver() -> None:
    """Stop and start kube-apiserver (the operator must ride it out), with the lab's own flags.

    The lab's start keeps the node-name resolution the node proxy needs; a bare start would leave
    `nodes/NAME/proxy` (how `ironlb doctor` reads speakers) failing with 400 for the rest of the lab."""
    lab_ctl.stop_apiserver()
    lab_ctl.start_apiserver()


class Churn:
    """Random changes to the churned Services and to the ALT pool, each with what it should lead to."""

    def __init__(self, kube: Kube, expect: Expectations, rng: random.Random) -> None:
        self.kube, self.expect, self.rng = kube, expect, rng
        self.alt = ALT_RANGES[0]
        self.ops = 0
        self.alive: set[int] = set()
        self.deleting: set[int] = set()  # deleted, maybe still held by the cleanup finalizer
        self.lb: dict[int, bool] = {}  # type LoadBalancer (True) or ClusterIP (False), per live Service

    def step(self) -> None:
        """One random change."""
        self.ops += 1
        if self.rng.random() < 0.05:
            self._edit_alt_pool()
            return
        i = self.rng.randrange(CHURNED)
        name, key = f"churn-{i}", f"{NS}/churn-{i}"
        if i in self.alive and self.rng.random() < 0.2:
            if self.kube.kubectl("delete", "service", "-n", NS, name, "--wait=false", check=False).returncode:
                return
            self.alive.discard(i)
            self.deleting.add(i)
            self.lb.pop(i, None)
            with self.expect.lock:  # nothing for the operator to do: not timed
                self.expect.pending.pop(key, None)
            return
        if i in self.deleting and self._terminating(name):
            return  # an apply now would edit the dying object, which then goes: as a user would, wait for it
        self.deleting.discard(i)
        choice = self.rng.choice(["main", "alt", "fixed", "shared", "clusterip"])
        fixed_ip = str(ipaddress.ip_network(FIXED_RANGE)[i])
        annotations, predicate, lb = {
            "main": ({"ironlb.io/address-pool": MAIN}, in_range(MAIN_RANGE), True),
            "alt": ({"ironlb.io/address-pool": ALT}, lambda s: in_range(self.alt)(s), True),
            "fixed": ({"ironlb.io/address-pool": FIXED, "ironlb.io/loadBalancerIPs": fixed_ip},
                      lambda s: s is not None and s.ips == (fixed_ip,), True),
            "shared": ({"ironlb.io/address-pool": MAIN, "ironlb.io/allow-shared-ip": f"k{i}"},
                       in_range(MAIN_RANGE), True),
            "clusterip": ({}, shows_nothing, False),
        }[choice]
        if not lb and self.lb.get(i):
            res = self._to_cluster_ip(name)
        else:
            res = self.kube.apply(service(name, annotations, lb), check=False)
        if res.returncode == 0:
            self.alive.add(i)
            self.lb[i] = lb
            self.expect.expect(key, predicate)

    def _terminating(self, name: str) -> bool:
        """True while the deleted Service NAME still exists (or the API server cannot say)."""
        res = self.kube.kubectl("get", "service", "-n", NS, name, "-o", "name", check=False)
        return res.returncode == 0 or "NotFound" not in res.stderr

    def _to_cluster_ip(self, name: str) -> subprocess.CompletedProcess[str]:
        """A type change LoadBalancer -> ClusterIP, dropping the fields only external Services may have."""
        ops = [{"op": "replace", "path": "/spec/type", "value": "ClusterIP"},
               {"op": "remove", "path": "/spec/ports/0/nodePort"},
               {"op": "remove", "path": "/spec/externalTrafficPolicy"},
               {"op": "remove", "path": "/spec/allocateLoadBalancerNodePorts"}]
        return self.kube.kubectl("patch", "service", "-n", NS, name, "--type=json", "-p", json.dumps(ops),
                                 check=False)

    def _edit_alt_pool(self) -> None:
        other = ALT_RANGES[1] if self.alt == ALT_RANGES[0] else ALT_RANGES[0]
        if self.kube.apply(pool_manifest(ALT, [other], autoAssign=False), check=False).returncode != 0:
            return  # the API server is down (a restart under way): try another change later
        self.alt = other
        for i in self.alive:  # Services in ALT may have to move: measure from the edit
            key = f"{NS}/churn-{i}"
            with self.expect.lock:
                pending = self.expect.pending.get(key)
            if pending is None:
                continue
            self.expect.expect(key, pending[1])


def setup(kube: Kube) -> None:
    """The namespace, the pools and the untouched Services."""
    kube.kubectl("create", "namespace", NS, check=False)
    kube.apply(*[pool_manifest(name, [cidr], autoAssign=False)
                 for name, cidr in ((MAIN, MAIN_RANGE), (ALT, ALT_RANGES[0]), (FIXED, FIXED_RANGE))])
    kube.apply(*[service(f"still-{i}", {"ironlb.io/address-pool": MAIN}) for i in range(UNTOUCHED)])


def teardown(kube: Kube) -> None:
    """Remove what setup made."""
    kube.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=60s", check=False, timeout=90)
    kube.kubectl("delete", "ipaddresspool", MAIN, ALT, FIXED, "--ignore-not-found", check=False)


def run_chaos(kube: Kube, kills: int, interval: float = 3.0, api_restarts: int = 0, seed: int = 1,
              converge_timeout: float = 90.0) -> dict[str, Any]:
    """The whole run; returns the figures."""
    rng = random.Random(seed)
    replicas = Replicas()
    teardown(kube)
    replicas.start()
    checker = DuplicateIPChecker().start()
    expect = Expectations(checker.shown)
    try:
        setup(kube)
        untouched = [f"{NS}/still-{i}" for i in range(UNTOUCHED)]
        wait_for(lambda: all(checker.shown.get(k) and checker.shown[k].ips for k in untouched), timeout=60,
                 what="the untouched Services' IPs")
        churn = Churn(kube, expect, rng)
        stop = threading.Event()

        def churn_loop() -> None:
            while not stop.is_set():
                try:
                    churn.step()
                except Exception as exc:  # e.g. kubectl timing out while the API server restarts
                    print(f"churn step failed: {exc}", file=sys.stderr)
                expect.check(checker.shown)
                stop.wait(rng.uniform(0.05, 0.3))

        worker = threading.Thread(target=churn_loop, daemon=True)
        worker.start()
        done_kills, restarts_done, last_compaction = 0, 0, time.monotonic()
        restart_at = {round((k + 1) * kills / (api_restarts + 1)) for k in range(api_restarts)}
        while done_kills < kills:
            time.sleep(rng.uniform(0.5 * interval, 1.5 * interval))
            done_kills += replicas.kill_leader()
            if done_kills in restart_at and restarts_done < api_restarts:
                restart_apiserver()
                restarts_done += 1
            if time.monotonic() - last_compaction > 10:
                compact_etcd()
                last_compaction = time.monotonic()
        stop.set()
        worker.join(30)
        deadline = time.monotonic() + converge_timeout
        while expect.pending and time.monotonic() < deadline:
            expect.check(checker.shown)
            time.sleep(0.1)
        changed = [k for k in untouched if len(checker.history.get(k, [])) > 1]
        lat = expect.latencies or [0.0]
        return {"kills": done_kills, "duplicate_ip_samples": len(checker.violations),
                "ips_changed_untouched": len(changed), "not_converged": len(expect.pending),
                "not_converged_keys": sorted(expect.pending)[:10], "converge_p50_s": round(percentile(lat, 50), 3),
                "converge_p95_s": round(percentile(lat, 95), 3), "converge_max_s": round(max(lat), 3),
                "converged_changes": len(expect.latencies), "api_restarts": restarts_done,
                "watch_410s": replicas.watch_410s() + checker.relists - 1, "checker_events": checker.events,
                "ops": churn.ops, "violations": [f"{v.ip} {v.services}" for v in checker.violations[:5]]}
    finally:
        checker.stop()
        replicas.stop()
        teardown(kube)


def main() -> None:
    """Command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.chaos_operator", description=__doc__.split("\n")[0])
    p.add_argument("--kills", type=int, default=100)
    p.add_argument("--interval", type=float, default=3.0, help="mean seconds between kills")
    p.add_argument("--api-restarts", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    report(run_chaos(lab(), args.kills, args.interval, args.api_restarts, args.seed))


if __name__ == "__main__":
    main()
