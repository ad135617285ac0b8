"""Prometheus metrics of the operator."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

POOL_SIZE = Gauge("ironlb_pool_addresses_total", "Addresses a pool covers", ["pool", "family"], registry=REGISTRY)
POOL_ASSIGNED = Gauge("ironlb_pool_addresses_in_use", "Addresses of a pool assigned to Services",
                      ["pool", "family"], registry=REGISTRY)
ALLOCATIONS = Counter("ironlb_allocations_total", "IPs allocated to Services", ["pool"], registry=REGISTRY)
ALLOCATION_FAILURES = Counter("ironlb_allocation_failures_total", "Allocation attempts that failed",
                              ["reason"], registry=REGISTRY)
RELEASES = Counter("ironlb_releases_total", "Services whose IPs were released", registry=REGISTRY)
PENDING = Gauge("ironlb_services_pending", "LoadBalancer Services waiting for an IP", registry=REGISTRY)
LEADER = Gauge("ironlb_operator_leader", "1 while this replica holds the leader Lease", registry=REGISTRY)
RECONCILE_SECONDS = Histogram("ironlb_service_reconcile_seconds", "Time to reconcile one Service, writes included",
                              registry=REGISTRY, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
WATCH_GONE = Gauge("ironlb_watch_gone_total", "Service watches that met 410 Gone and relisted", registry=REGISTRY)
