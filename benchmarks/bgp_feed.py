"""What one Service event costs BGP mode at scale: `python -m benchmarks.bgp_feed [--services N] [--events E]`.

N Services (Cluster and Local, one IP each, three nodes, one BGPPeer and one BGPAdvertisement) are fed to the
speaker's BGP feed; then E EndpointSlice events, each moving one Local Service's endpoint to another node. For
each event it times what BGP mode adds to the speaker's pass: the feed's `follow` (the Service's announcements,
its condition, this node's Desired) and the driver's diff of the new Desired against the one FRR holds, with
what FRR holds after it (what `FrrDriver.apply` computes around the batch). One JSON line: the median and p95
in milliseconds.

Left out: the L2 pass (view.publish, which L2 mode pays anyway), the vty round trip to FRR (one batch of a few
commands: tests/privileged/speaker/bgp measures it), and the API writes of the condition (queued, async).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import statistics
import time
from typing import Any

from ironlb.core.bgp.diff import plan
from ironlb.core.bgp.model import Desired
from ironlb.speaker.control.bgpfeed import BgpFeed
from ironlb.speaker.control.status import StatusReporter
from ironlb.speaker.state.incremental import IncrementalDesired
from tests.unit.speaker.state.test_incremental import endpoint_slice, node, pool, service

NODES = ("n1", "n2", "n3")
ALIVE = frozenset(NODES)
POOL = "198.18.64.0/18"  # a benchmark range: the addresses never leave the process


class _Quiet:
    """An API client and Event recorder that drop what they are given (the writes are not measured)."""

    def patch(self, *_: Any, **__: Any) -> dict[str, Any]:
        return {}

    def submit(self, *_: Any, **__: Any) -> None:
        return None


class _Driver:
    async def update(self, desired: Desired, touched: set[str] | None = None) -> None:
        return None


def _feed(services: int) -> tuple[IncrementalDesired, BgpFeed]:
    view = IncrementalDesired("n1")
    quiet = _Quiet()
    status = StatusReporter(quiet, "n1", recorder=quiet)  # type: ignore[arg-type]
    feed = BgpFeed("n1", quiet, "ironlb", _Driver(), status, lambda: None,  # type: ignore[arg-type]
                   watch_secret=lambda name, handler: None)  # type: ignore[arg-type,return-value]
    for name in NODES:
        view.apply("nodes", "ADDED", node(name))
    view.apply("pools", "ADDED", pool("p", addresses=(POOL,)))
    hosts = ipaddress.ip_network(POOL).hosts()
    for i in range(services):
        policy = "Local" if i % 2 else "Cluster"
        view.apply("services", "ADDED", service(f"s{i}", (str(next(hosts)),), policy=policy))
        view.apply("slices", "ADDED", endpoint_slice(f"s{i}-1", f"s{i}", (NODES[i % 3],)))
    feed.on_event("bgppeers", "ADDED", {"metadata": {"name": "tor"}, "spec": {
        "myASN": 64513, "peerASN": 64512, "peerAddress": "198.18.36.1"}})
    feed.on_event("bgpadvertisements", "ADDED", {"metadata": {"name": "all"}, "spec": {"ipAddressPools": ["p"]}})
    for name in NODES:
        feed.on_view_event("nodes", name, view)
    _pass(view, feed, None)
    return view, feed


def _pass(view: IncrementalDesired, feed: BgpFeed, keys: set[str] | None) -> None:
    view.set_alive(ALIVE)
    view.publish()
    changed = view.take_changed()
    feed.follow(view, None if keys is None else keys | changed, ALIVE)


async def measure(services: int, events: int) -> dict[str, Any]:
    """The cost of EVENTS endpoint moves at SERVICES Services, in milliseconds."""
    view, feed = _feed(services)
    applied = plan(Desired(), feed.desired)[1]  # what the driver holds after its first, full, apply
    costs = []
    for i in range(events):
        k = 2 * (i % (services // 2)) + 1  # a Local Service: its announcement moves with its endpoint
        view.apply("slices", "MODIFIED", endpoint_slice(f"s{k}-1", f"s{k}", (NODES[(k + 1 + i) % 3],)))
        view.set_alive(ALIVE)
        view.publish()
        changed = view.take_changed()
        feed._touched = set()
        start = time.perf_counter()
        feed.follow(view, changed, ALIVE)
        changes, applied = plan(applied, feed.desired, feed._touched)
        costs.append((time.perf_counter() - start) * 1000)
        assert len(changes) <= 4, changes
    costs.sort()
    return {"services": services, "events": events, "announced": len(feed.desired.announcements),
            "event_ms_median": round(statistics.median(costs), 3),
            "event_ms_p95": round(costs[int(0.95 * (len(costs) - 1))], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.services, args.events))))


if __name__ == "__main__":
    main()
