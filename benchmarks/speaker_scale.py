"""Speaker at scale: 10,000 Services, 100 Nodes, slice churn and relists, with real heartbeats between lab nodes.

The speaker under test is the real Speaker (incremental desired state, ranking table, fast plane in its own
process with real UDP heartbeats and real ARP/NDP sockets) in lab node-1's namespace, fed through its informer
callback with synthetic objects, each reduced first as its informers reduce them (slim.py): N Services (half
externalTrafficPolicy Local) with one EndpointSlice each, M Nodes (100 unless told), EndpointSlice updates at
a fixed rate and a full relist (every object again) at a fixed period. A real peer speaker's Liveness runs in
node-2's namespace and timestamps every heartbeat it accepts from node-1. The other Nodes are Node objects
only (their addresses answer nothing; past the segment's last address they have none): they are ranked,
never alive. No API server is written to: the status reporter is replaced by one that only counts what it
is given.

Figures (last line, JSON): heartbeat_gap_p99_ms / _max_ms (send interval as the peer sees it),
false_failovers (either side declaring the other dead), change_cost_ms_p99 (one Service or slice change ->
the speaker's whole pass: table, claims, status, forwarding, steering; measured after the run on the same
live speaker), node_change_ms_p99 (one Node's labels or Ready flipped -> the same whole pass), rss_mb
(speaker under test at the end: both of its processes, control plane and fast plane; each is given too),
heartbeat_late_rounds (the fast plane's own count of heartbeat rounds that woke over 50 ms late).
Left out: the API server (no watch latency, no status writes) and a real kernel's nftables (forwarding off).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from benchmarks._figures import percentile, report
from benchmarks._speaker_workload import change_cost, feed, node_change_cost
from e2e.lab.config import REPO
from e2e.lab.config import node as lab_node
from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S

PORT = 7950  # not the lab speakers' 7946: they may run alongside
KEY = b"speaker-scale-benchmark-key-0123456789abcdef"


class NullStatus:
    """Stands in for the status reporter: no API server here; counts what it would have written about."""

    class _Events:
        def close(self) -> None:
            """Nothing queued."""

        def stats(self) -> dict[str, int]:
            """No Events."""
            return {}

    def __init__(self) -> None:
        self.events = self._Events()
        self.reports = 0

    def report(self, *_: Any, **__: Any) -> None:
        """Count one report."""
        self.reports += 1

    def duplicate(self, *_: Any) -> None:
        """Nothing to record."""

    def forget(self, keys: Any) -> None:
        """Nothing said, nothing to forget."""

    def take_rechecks(self) -> set[str]:
        """No writes, so none to look at again."""
        return set()


def make_speaker(args: argparse.Namespace) -> Any:
    """The real Speaker, its informers replaced by a synthetic feed through the same callback."""
    from ironlb.common.kubeapi import Client, ClusterConfig
    from ironlb.speaker.control.app import Speaker
    from ironlb.speaker.control.forward import ForwardingSettings

    class Informer:
        """Started, it feeds the synthetic cluster to SP; stopped, it stops."""

        def __init__(self, sp: Any) -> None:
            self.sp, self.synced = sp, asyncio.Event()
            self.task: asyncio.Task[None] | None = None

        def start(self) -> None:
            self.task = asyncio.get_running_loop().create_task(feed(self.sp, args, self.sp.feed_stats))

        def stop(self) -> None:
            if self.task is not None:
                self.task.cancel()

    class Bench(Speaker):
        feed_stats: dict[str, int] = {"slice_updates": 0, "relists": 0}

        def _new_informers(self) -> list[Any]:
            return [Informer(self)]

    # An API client the speaker never calls here (its status reporter is replaced, it has no informers):
    # the speaker's own client, so the process loads what a real speaker loads.
    api = Client(ClusterConfig("http", "127.0.0.1", 9))
    sp = Bench("node-1", None, api, KEY, PORT, ["mgmt0"], ForwardingSettings(enabled=False),
               kube_proxy_metrics_url="", heartbeat=timings(args))
    sp.status = NullStatus()
    return sp


METRICS_PORT = 7475  # the speaker under test's /metrics, on its namespace's loopback


def scrape(port: int) -> bytes:
    """One Prometheus scrape of the speaker under test; its body."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read()
    finally:
        conn.close()
    if b"ironlb_speaker_announced_ips" not in body:
        raise RuntimeError("the speaker's /metrics lacks its own series")
    return body


def timings(args: argparse.Namespace) -> tuple[float, float]:
    """(interval, timeout) from --heartbeat INTERVAL:TIMEOUT, for both roles."""
    interval, timeout = args.heartbeat.split(":")
    return float(interval), float(timeout)


class GcPauses:
    """The collector's pauses, by generation (a collection holds the GIL for all of its length)."""

    def __init__(self) -> None:
        self.longest: dict[int, float] = {}
        self.count: dict[int, int] = {}
        self._started = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        gen, ms = info["generation"], (time.perf_counter() - self._started) * 1000
        self.longest[gen] = max(self.longest.get(gen, 0.0), ms)
        self.count[gen] = self.count.get(gen, 0) + 1

    def figures(self) -> dict[str, float]:
        """gc_max_ms_genN and gc_count_genN."""
        out: dict[str, float] = {}
        for gen in sorted(self.longest):
            out[f"gc_max_ms_gen{gen}"] = round(self.longest[gen], 2)
            out[f"gc_count_gen{gen}"] = self.count[gen]
        return out


async def speaker_role(args: argparse.Namespace) -> None:
    """Run the speaker under test; print its figures as JSON."""
    from ironlb.common.http import HealthServer
    from ironlb.speaker.control.metrics import registry_for
    from ironlb.speaker.fast.child import rss_mb  # this process's, as the fast plane measures its own

    sp = make_speaker(args)
    pauses = GcPauses()
    failovers: list[float] = []
    joined = asyncio.Event()

    # Its metrics are served as a real speaker's are (and scraped at the end): what that loads is measured too.
    health = HealthServer(registry_for(lambda: sp), sp.ready, "127.0.0.1", METRICS_PORT)
    task = asyncio.create_task(sp.run(health))
    while sp.fast is None or "node-1" not in sp.fast.alive:
        await asyncio.sleep(0.05)
        if task.done():
            await task
    if args.diagnose:  # which callback on the control loop runs long (the fast plane has its own process)
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = 0.05
    plain = sp._on_alive
    last: list[frozenset[str]] = [sp.fast.alive]

    def on_alive(alive: frozenset[str]) -> None:
        if "node-2" in last[0] and "node-2" not in alive and joined.is_set():
            failovers.append(time.monotonic())
        last[0] = alive
        plain(alive)

    sp._on_alive = on_alive
    sp.fast.on_alive = on_alive
    while args.peer and "node-2" not in sp.fast.alive:  # the peer heard and counted
        await asyncio.sleep(0.05)
    joined.set()
    print(json.dumps({"measuring": True}), flush=True)
    await asyncio.sleep(args.seconds)
    print(json.dumps({"measured": True}), flush=True)
    await asyncio.sleep(1.5)  # the fast plane's counters as of the end of the run (it reports every second)
    scraped = await asyncio.to_thread(scrape, METRICS_PORT)
    fast = sp.fast.stats
    by_kind = change_cost(sp, args)
    costs = by_kind["slices"] + by_kind["services"]
    node_costs = node_change_cost(sp, args, args.node_changes)
    figures = {"false_failovers_speaker": len(failovers), "change_cost_ms_p50": round(percentile(costs, 50), 3),
               "change_cost_ms_p99": round(percentile(costs, 99), 3),
               "change_cost_ms_p99_slice": round(percentile(by_kind["slices"], 99), 3),
               "change_cost_ms_p99_service_ip": round(percentile(by_kind["services"], 99), 3),
               "node_change_ms_p50": round(percentile(node_costs, 50), 3),
               "node_change_ms_p99": round(percentile(node_costs, 99), 3), "node_changes": len(node_costs),
               "rss_mb": round(rss_mb() + fast.rss_mb, 1), "metrics_scraped_bytes": len(scraped),
               "control_rss_mb": rss_mb(), "fast_rss_mb": fast.rss_mb,
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               "owned_ips": len(sp.fast.owned), "status_passes": sp.status.reports,
               "heartbeat_unsent": fast.counters.unsent, "heartbeat_late_rounds": fast.counters.late,
               "heartbeat_worst_late_ms": fast.counters.worst_late_ms,
               "fast_gc_max_ms": fast.gc_max_ms, **sp.feed_stats, **pauses.figures()}
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    print(json.dumps(figures), flush=True)


async def peer_role(args: argparse.Namespace) -> None:
    """A real peer's heartbeats: timestamp node-1's, count its deaths; print figures on SIGTERM."""
    import signal

    from ironlb.speaker.fast.liveness.membership import PeerState
    from ironlb.speaker.fast.liveness.transport import Liveness

    arrivals: list[float] = []
    deaths: list[float] = []
    was_alive = False
    window = [float("inf"), float("inf")]  # the speaker's measuring window (SIGUSR1 opens it, SIGUSR2 closes it)

    def on_change(alive: frozenset[str]) -> None:
        nonlocal was_alive
        if "node-1" in alive:
            was_alive = True
        elif was_alive and liveness.membership.peers["node-1"].state is PeerState.DEAD:
            deaths.append(time.monotonic())  # a timeout: a goodbye (the run's end) is no failover

    class Timed(Liveness):
        def datagram_received(self, data: bytes, addr: tuple) -> None:
            before = self.counters.received
            super().datagram_received(data, addr)
            if self.counters.received > before:
                arrivals.append(time.monotonic())

    interval, timeout = timings(args)
    liveness = Timed("node-2", KEY, PORT, on_change, interval=interval, timeout=timeout)
    liveness.set_peers({"node-1": lab_node(1).ipv4}, {"node-1": {lab_node(1).ipv4}})
    await liveness.start()
    await liveness.join()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: window.__setitem__(0, time.monotonic()))
    loop.add_signal_handler(signal.SIGUSR2, lambda: window.__setitem__(1, time.monotonic()))
    await stop.wait()
    await liveness.close()
    opened, closed = window
    pairs = list(itertools.pairwise(arrivals))
    before = [(b - a) * 1000 for a, b in pairs if b <= opened]  # the join, with the initial table
    gaps = [(b - a) * 1000 for a, b in pairs if a >= opened and b <= closed]
    deaths = [t for t in deaths if opened <= t <= closed + 1.0]  # a death just after the window: a gap inside it
    # When the long gaps came (seconds into the window): at a relist, or anywhere.
    long_at = [round(a - opened, 1) for a, b in pairs if a >= opened and b <= closed and b - a > 0.15][:20]
    print(json.dumps({"heartbeats": len(arrivals), "false_failovers_peer": len(deaths),
                      "heartbeat_gap_p50_ms": round(percentile(gaps, 50), 2) if gaps else None,
                      "heartbeat_gap_p99_ms": round(percentile(gaps, 99), 2) if gaps else None,
                      "heartbeat_gap_max_ms": round(max(gaps), 2) if gaps else None,
                      "heartbeat_gaps_over_150ms_at_s": long_at,
                      "join_heartbeat_gap_max_ms": round(max(before), 2) if before else None}), flush=True)


def in_node(index: int, role: str, args: argparse.Namespace) -> subprocess.Popen[str]:
    """This module again, in a lab node's namespace."""
    argv = ["ip", "netns", "exec", lab_node(index).netns, sys.executable, "-m", "benchmarks.speaker_scale",
            "--role", role, "--seconds", str(args.seconds), "--services", str(args.services),
            "--nodes", str(args.nodes), "--churn", str(args.churn), "--relist", str(args.relist),
            "--heartbeat", args.heartbeat, "--node-changes", str(args.node_changes),
            *(["--diagnose"] if args.diagnose else [])]
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}", "IRONLB_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)


def follow(speaker: subprocess.Popen[str], peer: subprocess.Popen[str], timeout: float) -> str:
    """The speaker's output; its measuring window marked on the peer as it opens and closes."""
    import signal

    assert speaker.stdout is not None
    deadline, lines = time.monotonic() + timeout, []
    for line in speaker.stdout:
        lines.append(line)
        if '"measuring"' in line:
            peer.send_signal(signal.SIGUSR1)
        elif '"measured"' in line:
            peer.send_signal(signal.SIGUSR2)
        if time.monotonic() > deadline:
            raise TimeoutError("the speaker under test did not finish")
    speaker.wait(timeout=30)
    return "".join(lines)


def main() -> int:
    """Bring up two lab nodes, run both roles, print the figures."""
    p = argparse.ArgumentParser(prog="benchmarks.speaker_scale")
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--services", type=int, default=10_000)
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--churn", type=float, default=500, help="EndpointSlice updates per second")
    p.add_argument("--relist", type=float, default=30, help="seconds between full relists")
    p.add_argument("--heartbeat", metavar="INTERVAL:TIMEOUT", default=f"{INTERVAL_S}:{TIMEOUT_S}",
                   help="heartbeat timings of both speakers, in seconds")
    p.add_argument("--node-changes", type=int, default=200, help="Node label/Ready flips timed after the run")
    p.add_argument("--role", choices=["main", "speaker", "peer"], default="main")
    p.add_argument("--diagnose", action="store_true",
                   help="log control-loop callbacks over 50 ms")
    p.add_argument("--no-peer", dest="peer", action="store_false", help="speaker role alone (a smoke run)")
    args = p.parse_args()
    if args.role == "speaker":
        asyncio.run(speaker_role(args))
        return 0
    if args.role == "peer":
        asyncio.run(peer_role(args))
        return 0
    from e2e.lab import lab

    lab.up(nodes=2, ipv6=False, with_ironlb=False)
    peer = in_node(2, "peer", args)
    speaker = in_node(1, "speaker", args)
    try:
        out = follow(speaker, peer, args.seconds + 300)
    finally:
        peer.terminate()
        peer_out, _ = peer.communicate(timeout=30)
        if speaker.poll() is None:
            speaker.kill()
    mine = json.loads(out.strip().splitlines()[-1])
    theirs = json.loads(peer_out.strip().splitlines()[-1])
    figures = {**mine, **theirs, "seconds": args.seconds, "services": args.services, "nodes": args.nodes,
               "churn_per_s": args.churn, "relist_s": args.relist, "heartbeat": args.heartbeat,
               "false_failovers": mine["false_failovers_speaker"] + theirs["false_failovers_peer"]}
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
