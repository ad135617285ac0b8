"""The operator's metrics: the shared recorder's Event counts are exported by outcome."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from ironlb.operator.metrics import count_events


def test_event_counts_are_exported_by_outcome() -> None:
    registry, counts = CollectorRegistry(), {"emitted": 3, "dropped": 7}
    count_events(lambda: counts, registry)
    counts["dropped"] = 9  # read at scrape time, not at registration
    text = generate_latest(registry).decode()
    assert 'ironlb_operator_events_total{outcome="emitted"} 3.0' in text
    assert 'ironlb_operator_events_total{outcome="dropped"} 9.0' in text
