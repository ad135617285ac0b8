"""kopf handlers: thin. Indices hold what exists; events feed the reconciler in kopf's memo.

Only event-watching handlers and indices are used, so kopf keeps no state on users' objects:
no finalizers, no last-handled-configuration annotations, no progress in status. kopf runs
handlers only after every index is fully populated, which is what makes restarts safe: the
first handler call restores every existing assignment before anything new is allocated.
"""

from __future__ import annotations

from typing import Any

import kopf

from ironlb.api.constants import GROUP, IPADDRESSPOOLS, VERSION
from ironlb.operator.reconciler import Reconciler


def slim_service(body: kopf.Body) -> dict[str, Any]:
    """The parts of a Service the operator needs (keeps 10k Services small in memory)."""
    meta = body.metadata
    return {
        "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid,
                     "labels": dict(meta.labels), "annotations": dict(meta.annotations)},
        "spec": dict(body.spec),
        "status": {"loadBalancer": dict(body.status.get("loadBalancer") or {})},
    }


@kopf.index("", "v1", "services")
def services_idx(body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """Every Service, by namespace/name."""
    return {f"{body.metadata.namespace}/{body.metadata.name}": slim_service(body)}


@kopf.index(GROUP, VERSION, IPADDRESSPOOLS)
def pools_idx(body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """Every IPAddressPool, by name."""
    return {body.metadata.name: {"metadata": dict(body.metadata), "spec": dict(body.spec),
                                 "status": dict(body.status)}}


@kopf.index("", "v1", "namespaces")
def namespaces_idx(body: kopf.Body, **_: Any) -> dict[str, dict[str, str]]:
    """Every Namespace's labels, by name."""
    return {body.metadata.name: dict(body.metadata.labels)}


def _ensure_restored(memo: kopf.Memo, services_idx: kopf.Index, pools_idx: kopf.Index,
                     namespaces_idx: kopf.Index) -> Reconciler:
    rec: Reconciler = memo.reconciler
    if not rec.restored.is_set():
        rec.restore(
            services=[v for store in services_idx.values() for v in store],
            pools=[v for store in pools_idx.values() for v in store],
            namespaces={k: next(iter(store)) for k, store in namespaces_idx.items()},
        )
    return rec


@kopf.on.event("", "v1", "services")
async def service_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, services_idx: kopf.Index,
                        pools_idx: kopf.Index, namespaces_idx: kopf.Index, **_: Any) -> None:
    """A Service changed."""
    rec = _ensure_restored(memo, services_idx, pools_idx, namespaces_idx)
    rec.service_event(slim_service(body), deleted=event["type"] == "DELETED")


@kopf.on.event(GROUP, VERSION, IPADDRESSPOOLS)
async def pool_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, services_idx: kopf.Index,
                     pools_idx: kopf.Index, namespaces_idx: kopf.Index, **_: Any) -> None:
    """An IPAddressPool changed."""
    rec = _ensure_restored(memo, services_idx, pools_idx, namespaces_idx)
    rec.pool_event({"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)},
                   deleted=event["type"] == "DELETED")


@kopf.on.event("", "v1", "namespaces")
async def namespace_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, services_idx: kopf.Index,
                          pools_idx: kopf.Index, namespaces_idx: kopf.Index, **_: Any) -> None:
    """A Namespace's labels changed."""
    rec = _ensure_restored(memo, services_idx, pools_idx, namespaces_idx)
    deleted = event["type"] == "DELETED"
    rec.namespace_event(body.metadata.name, None if deleted else dict(body.metadata.labels))
