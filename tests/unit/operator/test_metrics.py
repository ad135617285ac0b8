"""The operator's metrics: the shared recorder's Event counts by outcome, pending Services by reason, and
the process' CPU and memory."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from ironlb.core.allocator import AllocationReason
from ironlb.operator.metrics import REGISTRY, count_events, show_pending
from ironlb.operator.pending import Pending


def test_event_counts_are_exported_by_outcome() -> None:
    registry, counts = CollectorRegistry(), {"emitted": 3, "dropped": 7}
    count_events(lambda: counts, registry)
    counts["dropped"] = 9  # read at scrape time, not at registration
    text = generate_latest(registry).decode()
    assert 'ironlb_operator_events_total{outcome="emitted"} 3.0' in text
    assert 'ironlb_operator_events_total{outcome="dropped"} 9.0' in text


def test_pending_services_are_exported_by_reason_every_series_present() -> None:
    pending = Pending()
    pending.add("shop/a", None, AllocationReason.POOL_EXHAUSTED)
    pending.add("shop/b", None, AllocationReason.POOL_EXHAUSTED)
    pending.add("shop/c", None, AllocationReason.INVALID_REQUEST)
    pending.discard("shop/c")
    show_pending(pending.reasons())
    text = generate_latest(REGISTRY).decode()
    assert 'ironlb_services_pending{reason="PoolExhausted"} 2.0' in text
    assert 'ironlb_services_pending{reason="InvalidRequest"} 0.0' in text
    assert 'reason="Assigned"' not in text  # a granted request waits for nothing
    assert "process_cpu_seconds_total" in text and "process_resident_memory_bytes" in text
