"""speaker_scale's synthetic cluster and what it does to the speaker under test: the objects (Nodes, Services
with one EndpointSlice each), the initial list, slice churn and full relists fed through the speaker's informer
callback, and single changes timed to the end of the pass they cause."""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Iterator
from typing import Any

from e2e.lab.config import node as lab_node
from ironlb.speaker.state import slim

PHANTOM_BASE = 101  # phantom Nodes at 192.0.2.101 and up (nothing there)


def node_obj(name: str, address: str | None, ready: bool = True, rack: str = "a") -> dict[str, Any]:
    """A Node (Ready unless told), labelled with its rack."""
    addresses = [{"type": "InternalIP", "address": address}] if address else []
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "bench/rack": rack}},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}], "addresses": addresses}}


def node_address(i: int) -> str | None:
    """Node i's address: lab nodes 1 and 2 are real, the others phantoms (past the segment's last address,
    none: such a Node is ranked all the same, and no heartbeat is sent to it)."""
    if i <= 2:
        return lab_node(i).ipv4
    return f"192.0.2.{PHANTOM_BASE + i - 3}" if PHANTOM_BASE + i - 3 < 255 else None


def service_obj(i: int) -> dict[str, Any]:
    """Service i, with an ingress IP from the IPv6 benchmark pool."""
    return {"metadata": {"name": f"s{i}", "namespace": "bench", "resourceVersion": "1",
                         "annotations": {"ironlb.io/allocated-from-pool": "bench"}},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local" if i % 2 else "Cluster",
                     "ports": [{"protocol": "TCP", "port": 80, "nodePort": 30000 + i % 2700}]},
            "status": {"loadBalancer": {"ingress": [{"ip": f"2001:db8:ffff::{i + 1:x}"}]}}}


def slice_obj(i: int, nodes: list[str], rng: random.Random) -> dict[str, Any]:
    """Service i's EndpointSlice: three endpoints on random nodes, one of them sometimes not ready, each with a pod
    address (what steering around dead nodes keeps of it)."""
    picked = rng.sample(nodes, 3)
    return {"metadata": {"name": f"s{i}-x", "namespace": "bench", "labels": {"kubernetes.io/service-name": f"s{i}"}},
            "addressType": "IPv4", "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
            "endpoints": [{"nodeName": n, "conditions": {"ready": k or rng.random() < 0.5},
                           "addresses": [f"198.19.{rng.randrange(256)}.{rng.randrange(1, 255)}"]}
                          for k, n in enumerate(picked)]}


def everything(args: argparse.Namespace, rng: random.Random) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every object of the synthetic cluster, as (kind, event, object), one at a time.

    Made as they are consumed: the whole list at once would be a peak of ~20,000 raw objects that no informer
    has (it lists in pages), and the memory it leaves fragmented would be counted in the speaker's RSS.
    """
    names = [f"node-{i}" for i in range(1, args.nodes + 1)]
    yield "pools", "ADDED", {"metadata": {"name": "bench"}, "spec": {"addresses": ["2001:db8:ffff::/64"]}}
    yield "advertisements", "ADDED", {"metadata": {"name": "bench"}, "spec": {"ipAddressPools": ["bench"]}}
    for i, name in enumerate(names, 1):
        yield "nodes", "ADDED", node_obj(name, node_address(i))
    for i in range(args.services):
        yield "services", "ADDED", service_obj(i)
        yield "slices", "ADDED", slice_obj(i, names, rng)


def deliver(sp: Any, kind: str, event: str, obj: dict[str, Any]) -> None:
    """OBJ to the speaker as its informer delivers it: reduced to what the speaker reads (slim.py) first."""
    sp._on_event(kind, event, slim.TRANSFORMS.get(kind, dict)(obj))


async def feed(sp: Any, args: argparse.Namespace, stats: dict[str, int]) -> None:
    """The initial list, then slice churn at a fixed rate and a full relist every period."""
    rng = random.Random(7)
    names = [f"node-{i}" for i in range(1, args.nodes + 1)]
    for kind, event, obj in everything(args, rng):
        deliver(sp, kind, event, obj)
    sp.informers[0].synced.set()
    loop = asyncio.get_running_loop()
    tick, next_relist = 0.01, loop.time() + args.relist
    per_tick = max(1, round(args.churn * tick))
    while True:
        await asyncio.sleep(tick)
        for _ in range(per_tick):
            i = rng.randrange(args.services)
            deliver(sp, "slices", "MODIFIED", slice_obj(i, names, rng))
            stats["slice_updates"] += 1
        if loop.time() >= next_relist:  # as an informer's relist: every object once more, all at once
            for kind, _, obj in everything(args, random.Random(7)):
                deliver(sp, kind, "MODIFIED", obj)
            stats["relists"] += 1
            next_relist = loop.time() + args.relist


def change_cost(sp: Any, args: argparse.Namespace, count: int = 1000) -> dict[str, list[float]]:
    """Milliseconds from one change (a slice's endpoints, or a Service's IP) to the end of the speaker's pass."""
    rng = random.Random(11)
    names = [f"node-{i}" for i in range(1, args.nodes + 1)]
    costs: dict[str, list[float]] = {"slices": [], "services": []}
    for k in range(count):
        i = rng.randrange(args.services)
        if k % 2:
            kind, obj = "slices", slice_obj(i, names, rng)
        else:
            kind, obj = "services", service_obj(i)
            obj["status"]["loadBalancer"]["ingress"][0]["ip"] = f"2001:db8:ffff::1:{k:x}"
        costs[kind].append(timed_pass(sp, kind, obj))
    return costs


def node_change_cost(sp: Any, args: argparse.Namespace, count: int) -> list[float]:
    """Milliseconds from one Node's labels or Ready flipping to the speaker's whole pass (new table, claims,
    status), on the live speaker; each Node is put back (untimed) before the next. Nodes other than node-1 (a
    Ready flip there would move this speaker's own IPs away and back, which is no failover either)."""
    rng = random.Random(13)
    costs = []
    for k in range(count):
        i = rng.randrange(2, args.nodes + 1)
        name, address = f"node-{i}", node_address(i)
        changed = node_obj(name, address, rack="b") if k % 2 else node_obj(name, address, ready=False)
        costs.append(timed_pass(sp, "nodes", changed))
        deliver(sp, "nodes", "MODIFIED", node_obj(name, address))
        sp.recompute()
    return costs


def timed_pass(sp: Any, kind: str, obj: dict[str, Any]) -> float:
    """Milliseconds from one watch event, as the informer delivers it, to the end of the pass it causes."""
    obj = slim.TRANSFORMS.get(kind, dict)(obj)  # the informer's work, before the speaker's callback
    started = time.perf_counter()
    sp._on_event(kind, "MODIFIED", obj)
    sp.recompute()
    return (time.perf_counter() - started) * 1000


