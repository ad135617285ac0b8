"""Allocator cost per allocation at 1% and 99% fill of a /16, against a naive linear-scan allocator.

Run: `python -m benchmarks.allocator`. Each operation is one allocation of the lowest free address
followed by its release, so the fill level stays put. Our allocator is driven through its public API
(Allocator.assign / release with a ServiceRequest); the baseline does the same job naively: walk the
pool from its first address, skipping a set of used addresses. Fills: the first N% of the pool, and
(ours only) a random N% of it, which leaves ~650 scattered free intervals at 99%.

Cases are measured round-robin (one repeat of each in turn) so that load from other work on the
machine hits every case alike; the figure per case is the median over repeats. As timeit does, the
garbage collector is off while timing, so a collection of the big filled heap is not billed to
whichever operation happens to trigger it.

The last line printed is one JSON object: full_vs_empty_ratio (ours, 99% / 1%; target <= 1.5),
speedup_vs_linear_at_99 (linear / ours at 99%), and the microseconds per operation of each case.
"""

from __future__ import annotations

import gc
import ipaddress
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from itertools import pairwise

from ironlb.core.addresses import parse_ranges
from ironlb.core.allocator import AllocationReason, Allocator, ServiceRequest
from ironlb.core.pools import Pool

CIDR = "198.18.0.0/16"  # benchmark range (RFC 2544); purely in memory, never used on a network
BASE = int(ipaddress.IPv4Address("198.18.0.0"))
SIZE = 65536
REPEATS = 9
OPS = 5000  # allocate+release pairs per repeat for the cheap cases
LINEAR_99_OPS = 40  # the linear scan walks ~65,000 addresses per allocation at 99%: keep it bounded


def ip_at(offset: int) -> str:
    """The address OFFSET places into the pool."""
    return str(ipaddress.IPv4Address(BASE + offset))


class LinearAllocator:
    """Baseline: lowest free address found by walking the pool from its start; a set of used addresses."""

    def __init__(self, first: int, size: int) -> None:
        self.first, self.size = first, size
        self.used: set[int] = set()
        self.by_key: dict[str, int] = {}

    def assign(self, key: str) -> str:
        """Give KEY the lowest free address (or the one it has)."""
        if key in self.by_key:
            return str(ipaddress.IPv4Address(self.by_key[key]))
        for value in range(self.first, self.first + self.size):
            if value not in self.used:
                self.used.add(value)
                self.by_key[key] = value
                return str(ipaddress.IPv4Address(value))
        raise RuntimeError("pool exhausted")

    def release(self, key: str) -> None:
        """Free what KEY holds."""
        value = self.by_key.pop(key, None)
        if value is not None:
            self.used.discard(value)


def ours(fill: float, fragmented: bool) -> tuple[Allocator, str, int]:
    """Our allocator filled to FILL (the first addresses, or random ones), the IP the probe must get, and
    how many free intervals the fill leaves."""
    alloc = Allocator()
    alloc.set_pools([Pool("bench", tuple(parse_ranges([CIDR])))])
    count = round(SIZE * fill)
    if fragmented:
        used = random.Random(7).sample(range(SIZE), count)
        for n, offset in enumerate(used):
            assert alloc.restore(ServiceRequest(f"fill/{n}"), [ip_at(offset)], "bench").ok
        free = sorted(set(range(SIZE)) - set(used))
        lowest, intervals = free[0], 1 + sum(b != a + 1 for a, b in pairwise(free))
    else:
        for n in range(count):
            assert alloc.assign(ServiceRequest(f"fill/{n}")).ok
        lowest, intervals = count, 1
    return alloc, ip_at(lowest), intervals


def ours_case(alloc: Allocator, expected: str, _intervals: int) -> Callable[[int], None]:
    """OPS allocate+release pairs of the lowest free address on our allocator."""
    probe = ServiceRequest("bench/probe")
    first = alloc.assign(probe)
    assert first.reason is AllocationReason.ASSIGNED and first.ips == (expected,), (first, expected)
    alloc.release(probe.key)

    def run(ops: int) -> None:
        for _ in range(ops):
            alloc.assign(probe)
            alloc.release("bench/probe")

    return run


def linear_case(fill: float) -> Callable[[int], None]:
    """OPS allocate+release pairs on the linear baseline filled with the first FILL of the pool."""
    lin = LinearAllocator(BASE, SIZE)
    count = round(SIZE * fill)
    lin.by_key = {f"fill/{n}": BASE + n for n in range(count)}  # what count assign() calls would leave,
    lin.used = set(lin.by_key.values())  # without their quadratic walk
    assert lin.assign("bench/probe") == ip_at(count)
    lin.release("bench/probe")

    def run(ops: int) -> None:
        for _ in range(ops):
            lin.assign("bench/probe")
            lin.release("bench/probe")

    return run


def measure(cases: dict[str, tuple[Callable[[int], None], int]]) -> dict[str, float]:
    """Median microseconds per operation of each case, repeats taken round-robin."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for run, ops in cases.values():
        run(max(1, ops // 10))  # warm-up
    gc.collect()
    gc.disable()
    try:
        for _ in range(REPEATS):
            for name, (run, ops) in cases.items():
                start = time.perf_counter_ns()
                run(ops)
                samples[name].append((time.perf_counter_ns() - start) / ops / 1000)
    finally:
        gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    """Fill, measure, print readable lines and then the JSON figures."""
    began = time.perf_counter()
    ours_1, ours_99, ours_99f = ours(0.01, False), ours(0.99, False), ours(0.99, True)
    cases = {
        "ours_us_1": (ours_case(*ours_1), OPS),
        "ours_us_99": (ours_case(*ours_99), OPS),
        "ours_us_99_fragmented": (ours_case(*ours_99f), OPS),
        "linear_us_1": (linear_case(0.01), OPS),
        "linear_us_99": (linear_case(0.99), LINEAR_99_OPS),
    }
    free_intervals = ours_99f[2]
    filled = time.perf_counter() - began
    us = measure(cases)
    print(f"pool {CIDR} ({SIZE} addresses), median of {REPEATS} repeats; "
          "one op = allocate the lowest free address + release it")
    print(f"ours:   {us['ours_us_1']:8.2f} us at 1%   {us['ours_us_99']:8.2f} us at 99%   "
          f"{us['ours_us_99_fragmented']:8.2f} us at 99% fragmented ({free_intervals} free intervals)")
    print(f"linear: {us['linear_us_1']:8.2f} us at 1%   {us['linear_us_99']:8.2f} us at 99%")
    ratio = us["ours_us_99"] / us["ours_us_1"]
    print(f"ours 99%/1%: {ratio:.3f} (target <= 1.5); fragmented 99%/1%: "
          f"{us['ours_us_99_fragmented'] / us['ours_us_1']:.3f}; "
          f"linear/ours at 99%: {us['linear_us_99'] / us['ours_us_99']:.0f}x")
    print(f"fill {filled:.1f} s, total {time.perf_counter() - began:.1f} s")
    figures = {
        "full_vs_empty_ratio": round(ratio, 3),
        "speedup_vs_linear_at_99": round(us["linear_us_99"] / us["ours_us_99"], 1),
        "fragmented_vs_empty_ratio": round(us["ours_us_99_fragmented"] / us["ours_us_1"], 3),
        **{name: round(value, 2) for name, value in us.items()},
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
