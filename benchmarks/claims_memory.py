"""The memory of this node's claims, and the scan one peer's death costs, at 10,000 Services x 100 nodes. Offline.

Run: `python -m benchmarks.claims_memory`. The cluster is speaker_scale's (`everything()`: half the Services
externalTrafficPolicy Local, three endpoints each), fed to the real IncrementalDesired as node-1 and published
once. Then, as the speaker does: every IP's claims (`claims_of`, what FastProcess._sent keeps), the claims
messages encoded as FastProcess sends them, and a ClaimTable built from them decoded, as the fast plane's
process holds it. Sizes are what tracemalloc sees still allocated after each step (after a collection).

The last line printed is one JSON object: claims_bytes (the control plane's claims), table_bytes (the fast
plane's ClaimTable with its claims and node index), table_overhead_bytes (a ClaimTable over the control
plane's claim objects: its own structures only), claims_ms (computing every claim, untraced), and for node-2's death
scan_ms_p50 (finding the IPs to re-decide) and redecide_ms_p50 (and re-deciding them), with table_ips,
claims and affected_ips to check them by.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

from benchmarks._figures import report
from benchmarks._speaker_workload import everything
from ironlb.speaker.control.fastproc import CHUNK
from ironlb.speaker.fast.claims import Claims, ClaimTable, claims_of
from ironlb.speaker.fast.messages import TO_FAST, LearnNodes, PutClaims
from ironlb.speaker.fast.nodeindex import NodeIndex
from ironlb.speaker.fast.wire import decode, encode
from ironlb.speaker.state.incremental import IncrementalDesired
from ironlb.speaker.state.ranking import Table

ME, PEER = "node-1", "node-2"
T = TypeVar("T")


def traced(build: Callable[[], T]) -> tuple[T, int]:
    """What BUILD returns, and the bytes it left allocated (objects made before it do not count)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    out = build()
    gc.collect()
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return out, size


def timed(run: Callable[[], object], repeats: int = 5) -> float:
    """RUN's median milliseconds, untraced (tracing makes every allocation dearer)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def published(args: argparse.Namespace) -> Table:
    """speaker_scale's cluster, as node-1's ranking table."""
    view = IncrementalDesired(ME)
    for kind, event, obj in everything(args, random.Random(7)):
        view.apply(kind, event, obj)
    return view.publish()


def all_claims(table: Table, index: NodeIndex) -> dict[str, Claims]:
    """IP -> this node's claims, for the IPs that rank it (what FastProcess._sent keeps)."""
    out = {}
    for ip, entries in table.by_ip.items():
        claims = claims_of(entries, ME, index)
        if claims:
            out[ip] = claims
    return out


def messages(claims: dict[str, Claims], index: NodeIndex) -> list[bytes]:
    """What FastProcess sends for them: the node names, then the claims a chunk at a time."""
    ips = list(claims)
    out = [encode(LearnNodes(0, index.names_from(0)))]
    for start in range(0, len(ips), CHUNK):
        out.append(encode(PutClaims({ip: claims[ip] for ip in ips[start:start + CHUNK]})))
    return out


def child_table(sent: list[bytes]) -> ClaimTable:
    """The fast plane's ClaimTable, from the messages decoded one by one."""
    table = ClaimTable(ME)
    for data in sent:
        message = decode(data, TO_FAST)
        if isinstance(message, LearnNodes):
            table.learn(message.start, message.names)
        elif isinstance(message, PutClaims):
            table.update(message.changes)
    return table


def peer_death(table: ClaimTable, alive: frozenset[str], repeats: int) -> tuple[int, list[float], list[float]]:
    """IPs node-2's death re-decides, the milliseconds to find them, and to find and re-decide them."""
    scans, redecides, affected = [], [], []
    for _ in range(repeats):
        table.set_alive(alive)
        started = time.perf_counter()
        changed = table.set_alive(alive - {PEER})
        affected = table.affected_by(changed)
        scans.append((time.perf_counter() - started) * 1000)
        for ip in affected:
            table.interfaces_for(ip)
        redecides.append((time.perf_counter() - started) * 1000)
    return len(affected), scans, redecides


def main() -> int:
    """Build, measure, print the figures."""
    p = argparse.ArgumentParser(prog="benchmarks.claims_memory")
    p.add_argument("--services", type=int, default=10_000)
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--repeats", type=int, default=50)
    args = p.parse_args()
    table = published(args)
    index = NodeIndex()
    claims, claims_bytes = traced(lambda: all_claims(table, index))
    claims_ms = timed(lambda: all_claims(table, index))
    child, table_bytes = traced(lambda: child_table(messages(claims, index)))

    def over_claims() -> ClaimTable:
        own = ClaimTable(ME)
        own.learn(0, index.names_from(0))
        own.update(claims)
        return own

    _, overhead_bytes = traced(over_claims)
    alive = frozenset(f"node-{i}" for i in range(1, args.nodes + 1))
    affected, scans, redecides = peer_death(child, alive, args.repeats)
    report({"services": args.services, "nodes": args.nodes, "table_ips": len(claims),
            "claims": sum(len(c) for c in claims.values()), "claims_bytes": claims_bytes,
            "claims_ms": round(claims_ms, 1), "table_bytes": table_bytes, "table_overhead_bytes": overhead_bytes,
            "affected_ips": affected, "scan_ms_p50": round(statistics.median(scans), 3),
            "redecide_ms_p50": round(statistics.median(redecides), 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
