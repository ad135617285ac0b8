"""kopf handlers for the few, slowly changing objects: IPAddressPools, L2Advertisements, Namespaces. Thin.

Only event-watching handlers are used, so kopf keeps no state on any object: no finalizers, no
last-handled-configuration annotations, no progress in status. Services, which can number tens
of thousands, come through a lean list-and-watch informer instead (see startup.py): kopf's
per-object worker machinery made a restart with that many Services far too slow
(docs/design.md, "Services through an informer, pools through kopf").

The handlers live in a plain registry, not kopf's default one, which would log in through the
kubernetes package when it is installed. kopf logs in instead with the cluster configuration
IronLB's own client uses (`login`), so the whole process has one way to find and authenticate to
the API server. (kopf also imports the kubernetes package for its types whenever it is installed:
the image does not ship it.)
"""

from __future__ import annotations

from typing import Any

import kopf

from ironlb.api.constants import GROUP, IPADDRESSPOOLS, L2ADVERTISEMENTS, VERSION
from ironlb.common.kubeapi import ClusterConfig
from ironlb.operator.reconciler import Reconciler

REGISTRY = kopf.OperatorRegistry()


def connection_info(cluster: ClusterConfig) -> kopf.ConnectionInfo:
    """kopf's credentials for CLUSTER: its server, CA, client certificate and current token.

    kopf has no tls-server-name: with one set, kopf checks the serving certificate against the host."""
    if cluster.token is not None:
        cluster.token.invalidate()  # kopf asks again only after a 401: read a rotated token file afresh
    return kopf.ConnectionInfo(
        server=cluster.server, ca_path=cluster.ca_file, ca_data=cluster.ca_data, insecure=cluster.insecure,
        token=cluster.token.get() if cluster.token else None,
        certificate_path=cluster.cert_file, certificate_data=cluster.cert_data,
        private_key_path=cluster.key_file, private_key_data=cluster.key_data)


@kopf.on.login(registry=REGISTRY)
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """kopf's credentials: the cluster configuration the operator's own client was made with."""
    return connection_info(memo.cluster)


@kopf.on.startup(registry=REGISTRY)
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


@kopf.on.event(GROUP, VERSION, IPADDRESSPOOLS, registry=REGISTRY)
async def pool_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """An IPAddressPool changed."""
    rec: Reconciler = memo.reconciler
    rec.pool_event({"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)},
                   deleted=event["type"] == "DELETED")


@kopf.on.event(GROUP, VERSION, L2ADVERTISEMENTS, registry=REGISTRY)
async def advertisement_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """An L2Advertisement changed."""
    rec: Reconciler = memo.reconciler
    rec.advertisement_event({"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)},
                            deleted=event["type"] == "DELETED")


@kopf.on.event("", "v1", "namespaces", registry=REGISTRY)
async def namespace_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A Namespace's labels changed."""
    rec: Reconciler = memo.reconciler
    deleted = event["type"] == "DELETED"
    rec.namespace_event(body.metadata.name, None if deleted else dict(body.metadata.labels))
