"""A speaker's start at scale, offline: `python -m benchmarks.speaker_start [--services N] [--l2]`.

The real Speaker of node n1 in BGP mode (one of three Nodes, one BGPPeer, one BGPAdvertisement; --l2: in L2 mode,
one L2Advertisement and no BGP objects, so no BGP stages), with N Services (IPv6 and
IPv4 alternately, half externalTrafficPolicy Local; benchmarks._speaker_workload's objects, given the fields the
API server adds) and one EndpointSlice each. Stages, each timed in seconds:

- `list_s`: the speaker's informers list every kind from JSON bytes as the API server sends them (pages of the
  informer's page size), through the informer's own relist: parse, reduce (slim.py), diff against nothing;
- `apply_s`: the events that list queued, handed to the speaker's callback (the view, the BGP feed's nodes);
- `first_pass_s`: the join's table and collection (runtime.settle_runtime) and the speaker's first pass over
  every Service (`recompute`), without the BGP feed's part of it;
- `bgp_feed_s`: that part: every Service's announcements and condition, this node's Desired;
- `driver_s`: the FRR driver's update with that Desired: read back (an empty FRR), diff, render, and every
  command handed to the vty (stopped there: no FRR, the commands are only counted).

Left out: the API server (no watch latency, the status writes and Events the pass queues are cancelled unrun),
the wait for kube-proxy, the fast plane's process (its messages are encoded and dropped), FRR itself, and the
other two nodes' speakers (each does the same work on its own node). It needs no lab and no root.
Last line, JSON: each stage, `total_s`, the same in CPU seconds of this process (`cpu_s`, `cpu_total_s`: steadier
than elapsed time on a busy host), `rss_mb` (this process at the end) and `peak_rss_mb`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from benchmarks._figures import report
from benchmarks._speaker_workload import node_obj, service_obj, slice_obj
from ironlb.common.informer import PAGE_SIZE, Informer
from ironlb.common.kubeapi import Client, ClusterConfig
from ironlb.core.bgp.model import Desired
from ironlb.speaker.bgp.component import BgpComponent
from ironlb.speaker.bgp.render import Daemon
from ironlb.speaker.bgp.vty import Vty
from ironlb.speaker.control import runtime
from ironlb.speaker.control.app import Speaker
from ironlb.speaker.control.fastproc import FastProcess
from ironlb.speaker.control.forward import ForwardingSettings
from ironlb.speaker.control.status import StatusReporter
from ironlb.speaker.fast import wire
from ironlb.speaker.fast.child import rss_mb

ME = "n1"
NODES = ("n1", "n2", "n3")
POOL = "bench"
V4_RANGE = "198.18.64.0/18"  # a benchmark range: the addresses never leave the process
KEY = b"speaker-start-benchmark-key-0123456789abcdef"


# --- the cluster, as the API server serves it ----------------------------------------------------------------

def served(obj: dict[str, Any], version: int) -> dict[str, Any]:
    """OBJ with the metadata the API server adds (a uid, versions, a timestamp, managedFields) that the speaker
    must parse and then drop."""
    meta = obj["metadata"]
    meta.update({"uid": f"00000000-0000-4000-8000-{version:012d}", "resourceVersion": str(version),
                 "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z",
                 "managedFields": [{"manager": "bench", "operation": "Update", "apiVersion": "v1",
                                    "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                                    "fieldsV1": {"f:spec": {"f:ports": {}, "f:type": {}}}}]})
    return obj


def service(i: int) -> dict[str, Any]:
    """Service i: IPv6 or IPv4 (every other pair), Local when i is odd."""
    svc = service_obj(i)
    if i // 2 % 2:
        svc["status"]["loadBalancer"]["ingress"][0]["ip"] = f"198.18.{64 + i // 256 % 64}.{i % 256}"
    svc["spec"].update({"clusterIP": f"198.18.0.{i % 250 + 1}", "ipFamilies": ["IPv4" if i // 2 % 2 else "IPv6"]})
    return served(svc, 1000 + i)


def cluster(services: int, l2: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Every object the speaker lists, by informer name (L2: an L2Advertisement of the pool; the BGP kinds are not
    listed in L2 mode)."""
    rng = random.Random(7)
    return {
        "nodes": [served(node_obj(n, f"192.0.2.{k}"), k) for k, n in enumerate(NODES, 1)],
        "services": [service(i) for i in range(services)],
        "slices": [served(slice_obj(i, list(NODES), rng), 20_000 + i) for i in range(services)],
        "pools": [{"metadata": {"name": POOL, "resourceVersion": "5"},
                   "spec": {"addresses": ["2001:db8:ffff::/64", V4_RANGE]}}],
        "advertisements": [{"metadata": {"name": POOL, "resourceVersion": "8"},
                            "spec": {"ipAddressPools": [POOL]}}] if l2 else [],
        "bgppeers": [{"metadata": {"name": "tor", "resourceVersion": "6"},
                      "spec": {"myASN": 64513, "peerASN": 64512, "peerAddress": "2001:db8::1"}}],
        "bfdprofiles": [],
        "bgpadvertisements": [{"metadata": {"name": POOL, "resourceVersion": "7"},
                               "spec": {"ipAddressPools": [POOL], "peers": ["tor"]}}],
    }


def pages(items: list[dict[str, Any]], size: int = PAGE_SIZE) -> dict[str | None, bytes]:
    """A LIST response's pages as the API server sends them (JSON bytes), by the continue token that asks for
    each (None: the first)."""
    out: dict[str | None, bytes] = {}
    for start in range(0, max(len(items), 1), size):
        more = start + size < len(items)
        meta = {"resourceVersion": "99999", **({"continue": f"page-{start + size}"} if more else {})}
        body = {"kind": "List", "apiVersion": "v1", "metadata": meta, "items": items[start:start + size]}
        out[f"page-{start}" if start else None] = json.dumps(body, separators=(",", ":")).encode()
    return out


class Served:
    """A ListWatch whose list answers with PAGES, decoded as the API client decodes an answer."""

    def __init__(self, pages: dict[str | None, bytes]) -> None:
        self.pages = pages

    def list(self, *, limit: int | None, continue_token: str | None, timeout: Any) -> dict[str, Any]:
        """One page, parsed."""
        return json.loads(self.pages[continue_token])

    def watch(self, **_: Any) -> Any:
        """Not used: the benchmark ends with the list."""
        raise NotImplementedError


# --- what stands in for the API, the fast plane and FRR ------------------------------------------------------

class Quiet:
    """An API client and Event recorder that drop what they are given."""

    def patch(self, *_: Any, **__: Any) -> dict[str, Any]:
        """Nothing written."""
        return {}

    def submit(self, *_: Any, **__: Any) -> None:
        """No Event."""


class Unstarted(FastProcess):
    """The fast plane's control side with no process: each message is encoded, as for the channel, and dropped."""

    sent_bytes = 0

    def _send(self, message: Any) -> None:
        self.sent_bytes += len(wire.encode(message))


class Recorded(Vty):
    """A vty with nothing behind it: every command succeeds, and is counted; a show reads an empty FRR."""

    commands = 0

    async def _run(self, command: str) -> str:
        self.commands += 1
        return ""


def make_speaker(l2: bool = False) -> Speaker:
    """Node n1's real Speaker in BGP mode (L2: in L2 mode), with the stand-ins above."""
    component = None
    if not l2:
        component = BgpComponent("/nonexistent")
        component.driver.vtys = {d: Recorded(d.value) for d in Daemon}
    api = Client(ClusterConfig("http", "127.0.0.1", 9))  # never called: every writer is replaced
    sp = Speaker(ME, None, api, KEY, 7951, [], ForwardingSettings(enabled=False), kube_proxy_metrics_url="",
                 bgp=component)
    quiet = Quiet()
    sp.status = StatusReporter(quiet, ME, recheck=sp._recheck_later, recorder=quiet)  # type: ignore[arg-type]
    if sp.bgp is not None:
        sp.bgp.status = sp.status
    sp.fast = Unstarted(ME, KEY, 7951, sp._on_alive, sp._duplicate)
    sp.fast.alive = frozenset(NODES)
    return sp


# --- the stages -----------------------------------------------------------------------------------------------

class Stages:
    """Seconds by stage, in the order measured: elapsed, and this process's CPU time (steadier on a busy host)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def add(self, stage: str, seconds: float, cpu: float) -> None:
        """SECONDS more spent in STAGE, CPU of them on this process."""
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.cpu[stage] = self.cpu.get(stage, 0.0) + cpu

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """The block's time, counted to stage NAME."""
        started, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started, time.process_time() - cpu)

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """FN, its time counted to stage NAME."""
        def run(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return fn(*args, **kwargs)
        return run

    def less(self, name: str, part: str) -> None:
        """Stage NAME without PART, which ran inside it."""
        self.seconds[name] -= self.seconds.get(part, 0.0)
        self.cpu[name] -= self.cpu.get(part, 0.0)

    def figures(self) -> dict[str, Any]:
        """Each stage's elapsed seconds, the total, and the CPU seconds of each (`cpu_s`)."""
        return {**{k: round(v, 3) for k, v in self.seconds.items()}, "total_s": round(sum(self.seconds.values()), 3),
                "cpu_s": {k: round(v, 3) for k, v in self.cpu.items()}, "cpu_total_s": round(sum(self.cpu.values()), 3)}


async def drained() -> None:
    """Once every callback queued so far on the loop has run."""
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(done.set_result, None)
    await done


def listed(informers: Iterable[Informer], objects: dict[str, list[dict[str, Any]]]) -> None:
    """Each informer's list, from the objects' JSON pages (its events queued on the loop)."""
    for informer in informers:
        informer.source = Served(pages(objects[informer.name]))
        informer.relist()


async def start(services: int, l2: bool = False) -> dict[str, Any]:
    """The stages of one speaker's start with SERVICES Services (L2: in L2 mode)."""
    objects = cluster(services, l2)
    sp = make_speaker(l2)
    runtime.collect_less_often()  # as the speaker's run begins
    assert sp.fast is not None
    stages = Stages()
    informers = sp._new_informers()
    with stages.stage("list_s"):
        listed(informers, objects)
    del objects
    with stages.stage("apply_s"):
        await drained()

    if sp.bgp is not None:
        sp.bgp.follow = stages.timed("bgp_feed_s", sp.bgp.follow)  # type: ignore[method-assign]
    with stages.stage("first_pass_s"):
        sp.view.set_alive(sp.fast.alive)  # as the join: the table on the fast plane first, the collector settled
        sp.fast.publish(sp.view.publish())
        runtime.settle_runtime()
        sp.recompute()
    stages.less("first_pass_s", "bgp_feed_s")
    for task in list(sp.status._tasks):  # the condition writes: the API's part, not measured
        task.cancel()

    if sp.bgp is not None:
        with stages.stage("driver_s"):
            touched, sp.bgp._touched = sp.bgp._touched, set()  # as the feed's run hands a change to the driver
            await sp.bgp.driver.update(sp.bgp.desired, touched)
    return {**stages.figures(), **counts(sp)}


def counts(sp: Speaker) -> dict[str, Any]:
    """What the start made, to check the run did the work (and the memory it holds)."""
    assert sp.fast is not None
    figures: dict[str, Any] = {"l2_vips_announced": sum(len(sp.followed.vips_of(k)) for k in sp.followed.decisions)}
    if sp.bgp is not None:
        component = sp.bgp.driver
        desired: Desired = component.desired  # type: ignore[attr-defined]
        figures["announced"] = len(desired.announcements)
        figures["vty_commands"] = sum(v.commands for v in component.driver.vtys.values())  # type: ignore[attr-defined]
    return {**figures, "services": len(sp.view.infos),
            "conditions_queued": len(sp.status._said), "fast_plane_bytes": sp.fast.sent_bytes,  # type: ignore[attr-defined]
            "rss_mb": rss_mb(), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> int:
    """Run the start once; print its figures."""
    parser = argparse.ArgumentParser(prog="benchmarks.speaker_start", description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--l2", action="store_true", help="a speaker in L2 mode (no BGP objects, no FRR)")
    args = parser.parse_args()
    report({**asyncio.run(start(args.services, args.l2)), "mode": "l2" if args.l2 else "bgp"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
