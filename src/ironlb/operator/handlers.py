"""kopf handlers for the few, slowly changing objects: IPAddressPools, L2Advertisements, Namespaces. Thin.

Only event-watching handlers are used, so kopf keeps no state on any object: no finalizers, no
last-handled-configuration annotations, no progress in status. Services, which can number tens
of thousands, come through a lean list-and-watch informer instead (see startup.py): kopf's
per-object worker machinery made a restart with that many Services far too slow
(docs/design.md, "Services through an informer, pools through kopf").
"""

from __future__ import annotations

from typing import Any

import kopf

from ironlb.api.constants import GROUP, IPADDRESSPOOLS, L2ADVERTISEMENTS, VERSION
from ironlb.operator.reconciler import Reconciler


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: object) -> None:
    """kopf settings: no peering, no kopf-posted events, quick watch restarts."""
    settings.peering.standalone = True
    settings.posting.enabled = False
    settings.scanning.disabled = True
    settings.watching.connect_timeout = 10
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    # One kopf worker per object lives until idle_timeout passes without events: a worker limit
    # would cap a burst at limit/idle_timeout objects per second, so leave it unlimited.
    settings.batching.idle_timeout = 1.0
    # Our handlers only hand events to the reconciler; waiting 2 s per watcher on exit only delays
    # the Lease hand-over to the next leader.
    settings.batching.exit_timeout = 0.2


@kopf.on.event(GROUP, VERSION, IPADDRESSPOOLS)
async def pool_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """An IPAddressPool changed."""
    rec: Reconciler = memo.reconciler
    rec.pool_event({"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)},
                   deleted=event["type"] == "DELETED")


@kopf.on.event(GROUP, VERSION, L2ADVERTISEMENTS)
async def advertisement_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """An L2Advertisement changed."""
    rec: Reconciler = memo.reconciler
    rec.advertisement_event({"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)},
                            deleted=event["type"] == "DELETED")


@kopf.on.event("", "v1", "namespaces")
async def namespace_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A Namespace's labels changed."""
    rec: Reconciler = memo.reconciler
    deleted = event["type"] == "DELETED"
    rec.namespace_event(body.metadata.name, None if deleted else dict(body.metadata.labels))
