"""The speaker's memory at 10,000 Services x 100 Nodes, offline: what each holder keeps, and both processes' RSS.

Run: `python -m benchmarks.speaker_memory`. The cluster and its churn are speaker_scale's (`everything()`,
`slice_obj`): the real Speaker (speaker_scale's `make_speaker`: its status reporter only counts) is fed through
`_on_event`, with a real fast plane's process behind it (its heartbeat socket on a free port, no interfaces:
no packet sockets, no lab). Unlike speaker_scale's feed, each object first goes through the speaker's slim
transforms and is kept by a stand-in for the real informers' `_known` stores (a relist replaces them with
fresh objects), so what the real informers hold is counted too.

Steps: the initial list, then `settle_runtime()` as the speaker does after its join; then churn: batches of
slice updates with a recompute after each (as the control loop coalesces them) and full relists between. RSS
is read after each step, and at the end once more after glibc's malloc_trim (the free heap handed back: how
much of the RSS is fragmentation, not data); the change cost (one slice or Service change -> new table, as
speaker_scale measures it) after the churn. Then the holders' sizes: every object reachable from each holder,
counted once, in the order listed (what a later holder shares with an earlier one is the earlier one's). With
`--trace` (run as a second process by default, since tracing itself costs memory) tracemalloc's totals after
each step and the biggest allocation sites.

The last line printed is one JSON object of figures (MB unless named otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from types import FunctionType, ModuleType
from typing import Any

import ironlb.speaker.main  # noqa: F401  (what the speaker's process loads: its metrics server too)
from benchmarks._figures import percentile, report
from benchmarks._speaker_workload import everything, service_obj, slice_obj
from benchmarks.speaker_scale import KEY, make_speaker
from ironlb.speaker.control.fastproc import FastProcess
from ironlb.speaker.control.runtime import settle_runtime
from ironlb.speaker.state import slim

PORT = 7951  # neither the lab speakers' 7946 nor speaker_scale's 7950
MB = 1024 * 1024


def rss_mb(pid: int | str = "self") -> float:
    """A process's resident set, in MB."""
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return round(kb / 1024, 1)


class Informers:
    """What the speaker's informers keep (keep_objects=False): each kind's resourceVersions by key, to diff a
    relist; every event goes on to the speaker, slimmed."""

    def __init__(self, speaker: Any) -> None:
        self.speaker = speaker
        self.known: dict[str, dict[str, str]] = {}

    def event(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """One watch event, through the kind's transform into the store and on to the speaker."""
        transform = slim.TRANSFORMS.get(kind)
        obj = transform(obj) if transform else obj
        meta = obj["metadata"]
        self.known.setdefault(kind, {})[f"{meta.get('namespace', '')}/{meta['name']}"] = meta.get("resourceVersion")
        self.speaker._on_event(kind, event, obj)

    def relist(self, objects: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """A relist: fresh stores (the old objects go), every object handed over again, as speaker_scale does."""
        self.known = {}
        for kind, _, obj in objects:
            self.event(kind, "MODIFIED", obj)


def deep_size(roots: Iterable[Any], seen: set[int]) -> int:
    """Bytes of every object reachable from ROOTS not in SEEN (which it extends); code, classes, modules excluded."""
    total, stack = 0, list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | ModuleType | FunctionType):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def holders(sp: Any, informers: Informers) -> dict[str, Callable[[], list[Any]]]:
    """The speaker's big holders, in attribution order (a later one is charged only for what it alone holds)."""
    view = sp.view
    return {
        "informer_known": lambda: [informers.known],
        "view_state": lambda: [view.state],
        "view_index": lambda: [view.infos, view.nodes, view._slices, view._ready, view._by_pool, view._candidates,
                               view.ads, view.pool_labels, view.pool_forwarding, view._ranked_at, view._ready_at],
        "steering_targets": lambda: [view._targets],
        "ranking_table": lambda: [view.table],
        "fast_sent": lambda: [sp.fast._sent, sp.fast.nodes, sp.fast._published],
        "recompute": lambda: [sp.followed, sp.forwarding_kept, sp.fast.owned, sp.fast._announced],
    }


def sizes(sp: Any, informers: Informers) -> dict[str, float]:
    """Each holder's MB (see `holders`)."""
    seen: set[int] = set()
    return {name: round(deep_size(roots(), seen) / MB, 2) for name, roots in holders(sp, informers).items()}


def change_cost(sp: Any, args: argparse.Namespace, count: int = 1000) -> list[float]:
    """Milliseconds from one change to the new table (speaker_scale's change_cost, untraced)."""
    rng = random.Random(11)
    names = [f"node-{i}" for i in range(1, args.nodes + 1)]
    costs = []
    for k in range(count):
        i = rng.randrange(args.services)
        if k % 2:
            kind, obj = "slices", slim.endpoint_slice(slice_obj(i, names, rng))
        else:
            kind, obj = "services", service_obj(i)
            obj["status"]["loadBalancer"]["ingress"][0]["ip"] = f"2001:db8:ffff::1:{k:x}"
            obj = slim.service(obj)
        started = time.perf_counter()
        sp.view.apply(kind, "MODIFIED", obj)
        table = sp.view.publish()
        costs.append((time.perf_counter() - started) * 1000)
        sp.fast.publish(table)
    return costs


class Steps:
    """RSS (and, tracing, tracemalloc's total) after each step."""

    def __init__(self, fast: FastProcess) -> None:
        self.fast = fast
        self.figures: dict[str, float] = {}

    async def mark(self, step: str) -> None:
        """Record STEP's figures once the fast plane has taken in what was sent."""
        await drained(self.fast)
        gc.collect()
        self.figures[f"control_rss_{step}"] = rss_mb()
        if self.fast.process is not None:
            self.figures[f"fast_rss_{step}"] = rss_mb(self.fast.process.pid)
        if tracemalloc.is_tracing():
            self.figures[f"traced_{step}"] = round(tracemalloc.get_traced_memory()[0] / MB, 2)


async def drained(fast: FastProcess) -> None:
    """Until the channel's backlog is out, and the fast plane has had a moment to take it in."""
    channel = fast._channel
    while channel is not None and channel.backlog:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)


async def scenario(args: argparse.Namespace) -> dict[str, Any]:
    """Sync, settle, churn; the figures."""
    figures: dict[str, Any] = {"rss_imports": rss_mb()}
    if args.trace:
        tracemalloc.start()
    sp = make_speaker(args)
    sp.fast = FastProcess("node-1", KEY, PORT, sp._on_alive, sp._duplicate)
    await sp.fast.start()
    sp.fast.alive = frozenset({"node-1", "node-2"})  # what the fast plane would report with the lab's peer up
    informers, steps = Informers(sp), Steps(sp.fast)
    try:
        for kind, event, obj in everything(args, random.Random(7)):
            informers.event(kind, event, obj)
        sp.recompute()
        await steps.mark("synced")
        settle_runtime()
        await steps.mark("settled")
        await churn(sp, informers, args)
        await steps.mark("churned")
        if not args.trace:
            costs = change_cost(sp, args)
            figures.update(change_cost_ms_p50=round(percentile(costs, 50), 3),
                           change_cost_ms_p99=round(percentile(costs, 99), 3))
            await steps.mark("changed")
        if not args.trace:  # how much of the control plane's RSS is free heap glibc would give back if asked
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            figures["control_rss_trimmed"] = rss_mb()
        figures.update(steps.figures)
        if args.trace:
            figures["traced_by_file"] = by_file(tracemalloc.take_snapshot())
            tracemalloc.stop()
        else:
            figures["holders"] = sizes(sp, informers)
        figures.update(ips=len(sp.view.table.by_ip), claimed_ips=len(sp.fast._sent), owned_ips=len(sp.fast.owned))
    finally:
        await sp.fast.close()
    return figures


async def churn(sp: Any, informers: Informers, args: argparse.Namespace) -> None:
    """Batches of slice updates, a recompute after each, and a relist every RELIST_EVERY batches."""
    rng = random.Random(9)
    names = [f"node-{i}" for i in range(1, args.nodes + 1)]
    for batch in range(1, args.batches + 1):
        for _ in range(args.batch):
            informers.event("slices", "MODIFIED", slice_obj(rng.randrange(args.services), names, rng))
        sp.recompute()
        if batch % args.relist_every == 0:
            informers.relist(everything(args, random.Random(batch)))
            sp.recompute()
        await asyncio.sleep(0)  # the channel's writes go out


def by_file(snapshot: tracemalloc.Snapshot, top: int = 12) -> dict[str, float]:
    """MB still allocated, by the source file that allocated it (the biggest TOP)."""
    stats = snapshot.statistics("filename")[:top]
    return {os.path.relpath(s.traceback[0].filename): round(s.size / MB, 2) for s in stats}


def traced_run(args: argparse.Namespace) -> dict[str, Any]:
    """This benchmark again with --trace, in a process of its own; its figures."""
    argv = [sys.executable, "-m", "benchmarks.speaker_memory", "--trace", "--services", str(args.services),
            "--nodes", str(args.nodes), "--batches", str(args.batches), "--batch", str(args.batch),
            "--relist-every", str(args.relist_every)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    """Run the scenario (and the traced one), print the figures."""
    p = argparse.ArgumentParser(prog="benchmarks.speaker_memory")
    p.add_argument("--services", type=int, default=10_000)
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--batches", type=int, default=200, help="batches of slice updates, each then recomputed")
    p.add_argument("--batch", type=int, default=25, help="slice updates per batch")
    p.add_argument("--relist-every", type=int, default=100, help="batches between full relists")
    p.add_argument("--trace", action="store_true", help="this process traced (tracemalloc) only")
    p.add_argument("--heartbeat", default="0.1:0.5", help=argparse.SUPPRESS)  # make_speaker reads it
    args = p.parse_args()
    figures = asyncio.run(scenario(args))
    if not args.trace:
        traced = traced_run(args)
        figures.update({k: v for k, v in traced.items() if k.startswith("traced")})
        figures["rss_mb"] = round(figures["control_rss_changed"] + figures["fast_rss_changed"], 1)
        figures.update(services=args.services, nodes=args.nodes,
                       slice_updates=args.batches * args.batch, relists=args.batches // args.relist_every)
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
