"""What the speaker tells users: a condition on each Service naming the announcing node and
interfaces, NodeAssigned / NotAnnounced Events, and duplicate-answer Events. One writer per Service:
the announcing node, or (when nobody announces) the node elected for the Service key."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from ironlb.core.election import elect
from ironlb.speaker.desired import Decision, Reason

log = logging.getLogger(__name__)
CONDITION = "ironlb.io/Announced"
COMPONENT = "ironlb-speaker"


def condition_for(decisions: list[Decision], me: str = "", my_interfaces: tuple[str, ...] = ()) -> dict[str, str]:
    """The Announced condition (status/reason/message) summarising one Service's decisions."""
    parts = []
    for d in decisions:
        if d.node:
            names = my_interfaces if d.node == me and "*" in d.interfaces else tuple(sorted(d.interfaces))
            ifaces = "interface " + ",".join(names) if names and "*" not in names else "all interfaces"
            parts.append(f"{d.ip} from node {d.node} on {ifaces}")
    if parts and all(d.node for d in decisions):
        return {"status": "True", "reason": "Announcing", "message": "; ".join(parts)}
    missing = next(d for d in decisions if not d.node)
    text = {
        Reason.NO_ADVERTISEMENT: "no L2Advertisement selects its pool, so no node answers ARP/NDP for it",
        Reason.NO_READY_ENDPOINTS: "it has no ready endpoints",
        Reason.NO_ELIGIBLE_NODE: "no node is eligible (alive, selected by an L2Advertisement, not excluded, "
                                 "and with a local endpoint for externalTrafficPolicy: Local)",
    }.get(missing.reason, missing.reason.value)
    return {"status": "False", "reason": missing.reason.value, "message": f"{missing.ip} is not announced: {text}"}


class StatusReporter:
    """Writes Service conditions and Events when what this node is responsible for changes."""

    def __init__(self, api: client.ApiClient, me: str) -> None:
        self.core = client.CoreV1Api(api)
        self.me = me
        self._said: dict[str, tuple[str, str, str, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def report(self, decisions: tuple[Decision, ...], services: Mapping[str, Mapping[str, Any]],
               alive: frozenset[str], my_interfaces: tuple[str, ...] = ()) -> None:
        """Schedule the writes this node owes for the current decisions."""
        by_service: dict[str, list[Decision]] = {}
        for d in decisions:
            by_service.setdefault(d.service, []).append(d)
        for key, ds in by_service.items():
            announcing = [d.node for d in ds if d.node]
            writer = announcing[0] if announcing else elect(key, alive)
            if writer != self.me or key not in services:
                self._said.pop(key, None)
                continue
            cond = condition_for(ds, self.me, my_interfaces)
            # Keyed by UID too: a Service deleted and created again under the same name is new.
            said = (services[key]["metadata"].get("uid", ""), cond["status"], cond["reason"], cond["message"])
            if self._said.get(key) == said or _current(services[key]) == said[1:]:
                self._said[key] = said
                continue
            self._said[key] = said
            self._spawn(self._write(services[key], cond))

    def duplicate(self, svc: Mapping[str, Any] | None, ip: str, mac: str, ifname: str) -> None:
        """Report another MAC answering for an IP this node announces."""
        if svc is not None:
            self._spawn(self._event(svc, "DuplicateAnswer", f"another host ({mac}) answers for {ip} on "
                                    f"{self.me}/{ifname}: two answers split the traffic", warning=True))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, svc: Mapping[str, Any], cond: dict[str, str]) -> None:
        meta = svc["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        others = [c for c in (svc.get("status") or {}).get("conditions") or [] if c.get("type") != CONDITION]
        new = {"type": CONDITION, "lastTransitionTime": now, "observedGeneration": meta.get("generation", 0), **cond}
        body = {"status": {"conditions": [*others, new]}}
        try:
            await asyncio.to_thread(self.core.patch_namespaced_service_status, meta["name"], meta["namespace"], body)
        except ApiException as exc:
            log.warning("could not write condition on %s/%s: %s", meta["namespace"], meta["name"], exc.reason)
            return
        reason = "NodeAssigned" if cond["status"] == "True" else "NotAnnounced"
        await self._event(svc, reason, cond["message"], warning=cond["status"] != "True")

    async def _event(self, svc: Mapping[str, Any], reason: str, message: str, warning: bool = False) -> None:
        meta = svc["metadata"]
        now = dt.datetime.now(dt.UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{meta['name']}.", namespace=meta["namespace"]),
            involved_object=client.V1ObjectReference(api_version="v1", kind="Service", name=meta["name"],
                                                     namespace=meta["namespace"], uid=meta.get("uid")),
            reason=reason, message=message[:1024], type="Warning" if warning else "Normal", count=1,
            first_timestamp=now, last_timestamp=now, source=client.V1EventSource(component=COMPONENT, host=self.me),
            reporting_component="ironlb.io/speaker", reporting_instance=self.me)
        try:
            await asyncio.to_thread(self.core.create_namespaced_event, meta["namespace"], body)
        except ApiException as exc:
            log.warning("could not record event %s: %s", reason, exc.reason)


def _current(svc: Mapping[str, Any]) -> tuple[str, str, str] | None:
    for c in (svc.get("status") or {}).get("conditions") or []:
        if c.get("type") == CONDITION:
            return c.get("status"), c.get("reason"), c.get("message")
    return None
