"""ironlb_api_writes_total{verb,resource}: the writes a process's API client sent, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily

from ironlb.common.kubeapi.client import Client


class ApiWrites:
    """Exports a Client's write counts (create, update, patch, delete) by resource."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def collect(self) -> Iterator[CounterMetricFamily]:
        """Yield the one metric family."""
        family = CounterMetricFamily("ironlb_api_writes", "Writes sent to the API server, by verb (create, update, "
                                     "patch, delete) and resource (with its subresource)", labels=["verb", "resource"])
        for (verb, resource), n in sorted(self.client.writes().items()):
            family.add_metric([verb, resource], n)
        yield family


def count_writes(client: Client, registry: CollectorRegistry) -> None:
    """Export CLIENT's writes in REGISTRY (once per process)."""
    registry.register(ApiWrites(client))  # type: ignore[arg-type]
