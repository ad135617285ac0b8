"""Allocator cost per allocation at 1% and 99% fill of a /16, against a linear-scan baseline.

Figures: full_vs_empty_ratio (ours, 99% / 1%; target <= 1.5), speedup_vs_linear_at_99, and the raw
per-operation microseconds. Each operation is an allocation of the lowest free address followed by
its release, so the fill level stays put; medians over repeats keep machine noise out.
"""

from __future__ import annotations

import random
import statistics
import sys
import time

from ironlb.core.addresses import parse_ranges
from ironlb.core.allocator import Allocator, ServiceRequest
from ironlb.core.pools import Pool

CIDR = "198.18.0.0/16"  # pure in-memory: the addresses are never used on a network
SIZE = 65536
OPS = 2000
REPEATS = 7


class LinearAllocator:
    """Baseline: lowest free address by walking the pool from its start."""

    def __init__(self, size: int) -> None:
        self.size, self.used = size, set()

    def allocate(self) -> int:
        """The lowest free offset."""
        for i in range(self.size):
            if i not in self.used:
                self.used.add(i)
                return i
        raise RuntimeError("full")

    def release(self, i: int) -> None:
        """Free an offset."""
        self.used.discard(i)


def ours_at(fill: float, fragmented: bool) -> float:
    """Median microseconds per allocate+release on our allocator at a fill level."""
    alloc = Allocator()
    alloc.set_pools([Pool("bench", tuple(parse_ranges([CIDR])))])
    count = int(SIZE * fill)
    if fragmented:  # a random 99% of the addresses in use, not just the first ones
        ips = random.Random(7).sample(range(SIZE), count)
        base = 198 << 24 | 18 << 16
        for n, off in enumerate(ips):
            ip = f"198.18.{(base + off) >> 8 & 0xFF}.{off & 0xFF}"
            alloc.restore(ServiceRequest(f"fill/{n}"), [ip], "bench")
    else:
        for n in range(count):
            alloc.assign(ServiceRequest(f"fill/{n}"))
    probe = ServiceRequest("probe")
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter_ns()
        for _ in range(OPS):
            alloc.assign(probe)
            alloc.release("probe")
        samples.append((time.perf_counter_ns() - start) / OPS / 1000)
    return statistics.median(samples)


def linear_at(fill: float, ops: int) -> float:
    """Median microseconds per allocate+release on the linear baseline."""
    lin = LinearAllocator(SIZE)
    lin.used = set(range(int(SIZE * fill)))
    samples = []
    for _ in range(3):
        start = time.perf_counter_ns()
        for _ in range(ops):
            lin.release(lin.allocate())
        samples.append((time.perf_counter_ns() - start) / ops / 1000)
    return statistics.median(samples)


def main() -> int:
    """Measure and print the figures."""
    ours_1, ours_99 = ours_at(0.01, False), ours_at(0.99, False)
    ours_99_frag = ours_at(0.99, True)
    lin_1, lin_99 = linear_at(0.01, 2000), linear_at(0.99, 50)
    print(f"ours:   {ours_1:.2f} us at 1%, {ours_99:.2f} us at 99%, {ours_99_frag:.2f} us at 99% fragmented")
    print(f"linear: {lin_1:.2f} us at 1%, {lin_99:.2f} us at 99%")
    import json

    print(json.dumps({"full_vs_empty_ratio": round(ours_99 / ours_1, 3),
                      "fragmented_vs_empty_ratio": round(ours_99_frag / ours_1, 3),
                      "speedup_vs_linear_at_99": round(lin_99 / ours_99, 1),
                      "ours_us_1": round(ours_1, 2), "ours_us_99": round(ours_99, 2),
                      "ours_us_99_fragmented": round(ours_99_frag, 2),
                      "linear_us_1": round(lin_1, 2), "linear_us_99": round(lin_99, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
