"""Every API write the operator makes: Service status and annotation, pool status, Events."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from ironlb.api.constants import GROUP, IPADDRESSPOOLS, VERSION
from ironlb.operator.annotations import ALLOCATED_FROM_POOL

log = logging.getLogger(__name__)
COMPONENT = "ironlb-operator"
EVENT_NAMESPACE_FOR_CLUSTER_OBJECTS = "default"


@dataclass(frozen=True)
class ObjectRef:
    """What an Event is about."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    uid: str | None

    def to_api(self) -> client.V1ObjectReference:
        """The Kubernetes ObjectReference for this object."""
        return client.V1ObjectReference(api_version=self.api_version, kind=self.kind, name=self.name,
                                        namespace=self.namespace, uid=self.uid)


def service_ref(namespace: str, name: str, uid: str | None) -> ObjectRef:
    """Reference to a Service."""
    return ObjectRef("v1", "Service", name, namespace, uid)


def pool_ref(name: str, uid: str | None) -> ObjectRef:
    """Reference to an IPAddressPool."""
    return ObjectRef(f"{GROUP}/{VERSION}", "IPAddressPool", name, None, uid)


class Writer:
    """Writes to the API from asyncio, through a bounded pool of threads running the sync client."""

    def __init__(self, api_client: client.ApiClient, identity: str, concurrency: int = 16) -> None:
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.identity = identity
        self._slots = asyncio.Semaphore(concurrency)
        # Repeated identical Events are aggregated (count + lastTimestamp) as kubelet does.
        self._recent_events: OrderedDict[tuple[str, str, str], tuple[str, str, int]] = OrderedDict()

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async with self._slots:
            return await asyncio.to_thread(fn, *args, **kwargs)

    async def set_service_ingress(self, namespace: str, name: str, ingress: list[dict[str, str]] | None) -> bool:
        """Write status.loadBalancer.ingress (None clears it); False if the Service is gone."""
        body = {"status": {"loadBalancer": {"ingress": ingress}}}
        return await self._patch_service(self.core.patch_namespaced_service_status, namespace, name, body)

    async def set_pool_annotation(self, namespace: str, name: str, pool: str | None) -> bool:
        """Write (or remove, with None) the allocated-from-pool annotation."""
        body = {"metadata": {"annotations": {ALLOCATED_FROM_POOL: pool}}}
        return await self._patch_service(self.core.patch_namespaced_service, namespace, name, body)

    async def _patch_service(self, fn: Any, namespace: str, name: str, body: dict[str, Any]) -> bool:
        try:
            await self._call(fn, name, namespace, body)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def set_pool_status(self, name: str, status: dict[str, Any]) -> None:
        """Merge-patch an IPAddressPool's status."""
        try:
            await self._call(self.custom.patch_cluster_custom_object_status, GROUP, VERSION, IPADDRESSPOOLS,
                             name, {"status": status})
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def event(self, ref: ObjectRef, reason: str, message: str, warning: bool = False) -> None:
        """Record an Event on `ref` (never raises: an Event is worth less than the work it reports)."""
        try:
            await self._call(self._event_sync, ref, reason, message, warning)
        except ApiException as exc:  # Events are best effort: e.g. the namespace is being deleted
            log.warning("could not record event %s on %s %s/%s: %s %s", reason, ref.kind, ref.namespace,
                        ref.name, exc.status, exc.reason)
        except Exception:
            log.warning("could not record event %s on %s/%s", reason, ref.kind, ref.name, exc_info=True)

    def _event_sync(self, ref: ObjectRef, reason: str, message: str, warning: bool) -> None:
        namespace = ref.namespace or EVENT_NAMESPACE_FOR_CLUSTER_OBJECTS
        now = dt.datetime.now(dt.UTC)
        key = (f"{ref.kind}/{namespace}/{ref.name}/{ref.uid}", reason, message)
        if key in self._recent_events:
            ev_name, ev_ns, count = self._recent_events[key]
            try:
                self.core.patch_namespaced_event(ev_name, ev_ns, {"count": count + 1, "lastTimestamp": now.isoformat()})
                self._recent_events[key] = (ev_name, ev_ns, count + 1)
                self._recent_events.move_to_end(key)
                return
            except ApiException:
                self._recent_events.pop(key, None)
        ev_name = f"{ref.name}.{uuid.uuid4().hex[:12]}"
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=ev_name, namespace=namespace),
            involved_object=ref.to_api(), reason=reason, message=message[:1024],
            type="Warning" if warning else "Normal", count=1, first_timestamp=now, last_timestamp=now,
            source=client.V1EventSource(component=COMPONENT), reporting_component=f"{GROUP}/operator",
            reporting_instance=self.identity[:128])
        self.core.create_namespaced_event(namespace, body)
        self._recent_events[key] = (ev_name, namespace, 1)
        while len(self._recent_events) > 4096:
            self._recent_events.popitem(last=False)
