"""Prometheus metrics of the operator."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from ironlb.core.allocation_reason import OK_REASONS, AllocationReason

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # process_*: CPU and memory for the dashboard

POOL_SIZE = Gauge("ironlb_pool_addresses_total", "Addresses a pool covers", ["pool", "family"], registry=REGISTRY)
POOL_ASSIGNED = Gauge("ironlb_pool_addresses_in_use", "Addresses of a pool assigned to Services",
                      ["pool", "family"], registry=REGISTRY)
ALLOCATIONS = Counter("ironlb_allocations_total", "IPs allocated to Services", ["pool"], registry=REGISTRY)
ALLOCATION_FAILURES = Counter("ironlb_allocation_failures_total", "Allocation attempts that failed",
                              ["reason"], registry=REGISTRY)
RELEASES = Counter("ironlb_releases_total", "Services whose IPs were released", registry=REGISTRY)
PENDING = Gauge("ironlb_services_pending", "LoadBalancer Services waiting for an IP, by the allocator's reason",
                ["reason"], registry=REGISTRY)
PENDING_RETRIES = Counter("ironlb_pending_retries_total",
                          "Pending Services retried because a release, an ended hold or a pool change could serve them",
                          registry=REGISTRY)
LEADER = Gauge("ironlb_operator_leader", "1 while this replica holds the leader Lease", registry=REGISTRY)
RECONCILE_SECONDS = Histogram("ironlb_service_reconcile_seconds", "Time to reconcile one Service, writes included",
                              registry=REGISTRY, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
WATCH_GONE = Gauge("ironlb_watch_gone_total", "Service watches that met 410 Gone and relisted", registry=REGISTRY)


# Why a Service waits: one series each, 0 included (an alert on PoolExhausted needs the series).
REFUSALS = tuple(r for r in AllocationReason if r not in OK_REASONS)


def show_pending(reasons: Tally[AllocationReason]) -> None:
    """Set ironlb_services_pending{reason} from the pending Services' reasons."""
    for reason in REFUSALS:
        PENDING.labels(reason.value).set(reasons[reason])


class _EventCounts(Collector):
    """ironlb_operator_events_total{outcome}: what the shared Event recorder did with each Event."""

    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("ironlb_operator_events", "Events the operator asked to record, by outcome "
                                     "(emitted, aggregated, combined, dropped by the spam filter, throttled by a "
                                     "reason's budget, failed)",
                                     labels=["outcome"])
        for outcome, n in self.stats().items():
            family.add_metric([outcome], n)
        yield family


def count_events(stats: Callable[[], dict[str, int]], registry: CollectorRegistry = REGISTRY) -> None:
    """Export the recorder's counts (called once, at start-up)."""
    registry.register(_EventCounts(stats))


show_pending(Tally())  # every reason's series from the start
