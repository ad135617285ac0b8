"""What the speaker tells users: a condition on each Service naming the announcing node and
interfaces, NodeAssigned / NotAnnounced Events, and duplicate-answer Events. One writer per Service:
the announcing node, or (when nobody announces) the node elected for the Service key."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from ironlb.api.conditions import announced_part, announcers, changed_since, condition, find, status_word
from ironlb.api.reasons import AnnounceReason, ConditionType, EventReason, ForwardingReason, Reason
from ironlb.common.events import Budget, EventRecorder, KubeEventSink, ObjectRef
from ironlb.common.kubeapi import SERVICES, ApiError, Client
from ironlb.core.election import elect
from ironlb.speaker.control.forward.plan import Backend, ServicePlan
from ironlb.speaker.state.desired import Decision

log = logging.getLogger(__name__)
COMPONENT = "ironlb-speaker"
# A condition written this long ago and still not on the Service (someone else replaced it, or the write
# was lost) is written again; sooner than this, the watch may simply not have shown our write yet.
RESAY_AFTER = 5.0
WRITE_TIMEOUT = (5.0, 10.0)  # (connect, read) seconds for a condition write
# Any host on the segment can claim every VIP at once: the per-Service limit alone would let it write that
# many Events per Service. Past this budget (for all Services together) the claims are only counted.
BUDGETS = {EventReason.DUPLICATE_ANSWER: Budget(burst=25, refill_s=60.0)}


class Said(NamedTuple):
    """What one condition says: whether it holds, why, and in words."""

    true: bool
    reason: Reason
    message: str

    def wire(self) -> tuple[str, str, str]:
        """(status, reason, message) as written on the Service."""
        return status_word(self.true), self.reason.value, self.message


def condition_for(decisions: list[Decision], me: str = "", my_interfaces: tuple[str, ...] = ()) -> Said:
    """The Announced condition summarising one Service's decisions."""
    parts = []
    for d in decisions:
        if d.node:
            names = my_interfaces if d.node == me and "*" in d.interfaces else tuple(sorted(d.interfaces))
            parts.append(announced_part(d.ip, d.node, names if names and "*" not in names else None))
    if parts and all(d.node for d in decisions):
        return Said(True, AnnounceReason.ANNOUNCING, "; ".join(parts))
    missing = next(d for d in decisions if not d.node)
    if all(d.reason is AnnounceReason.WITHDRAWN for d in decisions):
        # The same words from any node: once the announcer has said it, a peer that now writes says nothing new.
        return Said(False, AnnounceReason.WITHDRAWN, f"{', '.join(d.ip for d in decisions)} withdrawn: the Service "
                    "is being deleted or is no longer a LoadBalancer IronLB serves, and no node answers ARP/NDP for it")
    text = {
        AnnounceReason.NOT_IN_POOL: "it is in no valid IPAddressPool's addresses, so no node answers ARP/NDP for it "
                                    "(whatever the Service's annotations name)",
        AnnounceReason.NO_ADVERTISEMENT: "no L2Advertisement selects its pool, so no node answers ARP/NDP for it",
        AnnounceReason.NO_MATCHING_ADVERTISEMENT: "the serviceSelectors of every L2Advertisement of its pool leave "
                                                   "this Service out, so no node answers ARP/NDP for it",
        AnnounceReason.NO_READY_ENDPOINTS: "it has no ready endpoints",
        AnnounceReason.NO_ELIGIBLE_NODE: "no node is eligible (alive, selected by an L2Advertisement, not excluded, "
                                 "and with a local endpoint for externalTrafficPolicy: Local)",
    }.get(missing.reason, missing.reason.value)
    return Said(False, missing.reason, f"{missing.ip} is not announced: {text}")


def forwarding_reason(plan: ServicePlan) -> ForwardingReason:
    """What the Forwarding condition of PLAN's Service says, as a reason (the first problem that applies)."""
    if plan.disabled:
        return ForwardingReason.DISABLED
    if plan.invalid_range_count:
        return ForwardingReason.INVALID_SOURCE_RANGES
    return ForwardingReason.FORWARDING if plan.healthy else ForwardingReason.NO_HEALTHY_BACKEND


def forwarding_condition(plan: ServicePlan, svc: Mapping[str, Any]) -> Said:
    """The Forwarding condition of a NodePort-forwarded Service: which nodes' NodePorts take traffic."""
    others = "; ".join(f"{n}: {s.value}" for n, s in sorted(plan.backends.items()) if s is not Backend.HEALTHY)
    problems = "; ".join(plan.problems)
    ports = ", ".join(f"{p.get('port')}/{p.get('protocol', 'TCP')} -> NodePort {p.get('nodePort')}"
                      for p in (svc.get("spec") or {}).get("ports") or [])
    reason = forwarding_reason(plan)
    if reason is ForwardingReason.DISABLED:
        message = ("its pool forwards to NodePorts, but the speakers run with NodePort forwarding off "
                   "(Helm value speaker.nodePortForwarding: true turns it on)")
    elif reason is ForwardingReason.INVALID_SOURCE_RANGES:
        # Entries are shown sanitised and bounded (ironlb.core.source_ranges.shown): they are user text.
        bad = ", ".join(f"{entry!r} ({why.value})" for entry, why in plan.invalid_ranges)
        more = plan.invalid_range_count - len(plan.invalid_ranges)
        message = (f"loadBalancerSourceRanges entries not used: {bad}" + (f" and {more} more" if more > 0 else "")
                   + "; only the valid ranges let clients in")
    elif reason is ForwardingReason.NO_HEALTHY_BACKEND:
        message = "no node's NodePort can take the traffic: " + (others or "no nodes")
    else:
        message = (f"{', '.join(plan.vips)}: {ports} on {', '.join(plan.healthy)}"
                   + (f" (not used: {others})" if others else "") + (f"; {problems}" if problems else ""))
    return Said(reason is ForwardingReason.FORWARDING, reason, message)


class StatusReporter:
    """Writes Service conditions and Events when what this node is responsible for changes."""

    def __init__(self, api: Client, me: str, recheck: Callable[[float], None] = lambda _: None,
                 recorder: EventRecorder | None = None) -> None:
        self.api = api
        self.me = me
        # Every Event this node writes goes through the shared recorder: aggregated and rate-limited.
        self.events = recorder or EventRecorder(KubeEventSink(api), COMPONENT, me, budgets=BUDGETS)
        self._recheck = recheck  # asks for another report() after this many seconds
        # (service key, condition type) -> ((uid, status, reason, message) said, monotonic time it was sent)
        self._said: dict[tuple[str, ConditionType], tuple[tuple[str, str, str, str], float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._rechecks: set[str] = set()  # Services whose condition is looked at again in a later report

    def take_rechecks(self) -> set[str]:
        """The Services a report asked to look at again (a write not yet seen on them); forgotten here."""
        keys, self._rechecks = self._rechecks, set()
        return keys

    def report(self, decisions: tuple[Decision, ...], services: Mapping[str, Mapping[str, Any]],
               alive: frozenset[str], my_interfaces: tuple[str, ...] = (),
               forwarding: Mapping[str, ServicePlan] | None = None) -> None:
        """Schedule the writes this node owes for the DECISIONS given (and their forwarding): those of the Services
        that changed, or of every Service."""
        by_service: dict[str, list[Decision]] = {}
        for d in decisions:
            by_service.setdefault(d.service, []).append(d)
        for key, ds in by_service.items():
            writer = condition_writer(key, ds, services.get(key), alive)
            if writer != self.me or key not in services:
                self._said.pop((key, ConditionType.SERVICE_ANNOUNCED), None)
                self._said.pop((key, ConditionType.SERVICE_FORWARDING), None)
                continue
            self.say(services[key], ConditionType.SERVICE_ANNOUNCED, condition_for(ds, self.me, my_interfaces))
            if forwarding and key in forwarding:
                self.say(services[key], ConditionType.SERVICE_FORWARDING,
                         forwarding_condition(forwarding[key], services[key]))

    def forget(self, keys: Iterable[str]) -> None:
        """The Services KEYS are gone: nothing is said of them any more."""
        for key in keys:
            for ctype in (ConditionType.SERVICE_ANNOUNCED, ConditionType.SERVICE_FORWARDING,
                          ConditionType.SERVICE_BGP_ANNOUNCED):
                self._said.pop((key, ctype), None)

    def say(self, svc: Mapping[str, Any], ctype: ConditionType, cond: Said) -> None:
        """Write condition CTYPE unless the Service already carries it (or it is on its way)."""
        key = f"{svc['metadata'].get('namespace')}/{svc['metadata']['name']}"
        # Keyed by UID too: a Service deleted and created again under the same name is new.
        said = (svc["metadata"].get("uid", ""), *cond.wire())
        current = _current(svc, ctype)
        if current == said[1:]:
            self._said[(key, ctype)] = (said, time.monotonic())
            return
        previous, sent_at = self._said.get((key, ctype), (None, 0.0))
        if previous == said and (age := time.monotonic() - sent_at) < RESAY_AFTER:
            self._rechecks.add(key)
            self._recheck(RESAY_AFTER - age)  # not there yet: look again once the watch must have shown it
            return
        self._said[(key, ctype)] = (said, time.monotonic())
        flipped = current is None or current[0] != said[1]
        self._spawn(self._write(svc, ctype, cond, flipped, repeated=previous == said, first=current is None))

    async def flush(self) -> None:
        """Wait for the condition writes and Events in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def duplicate(self, svc: Mapping[str, Any] | None, ip: str, mac: str, ifname: str) -> None:
        """Report another MAC answering for an IP this node announces (cheap: called once per such frame)."""
        if svc is not None:  # no task per frame: the recorder decides at once, and writes in its own thread
            self.events.submit(service_ref(svc), EventReason.DUPLICATE_ANSWER, f"another host ({mac}) answers for "
                               f"{ip} on {self.me}/{ifname}: two answers split the traffic", warning=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, svc: Mapping[str, Any], ctype: ConditionType, cond: Said, flipped: bool,
                     repeated: bool, first: bool = False) -> None:
        meta = svc["metadata"]
        since = changed_since(svc.get("status"), ctype, cond.true)
        new = condition(ctype, cond.true, cond.reason, cond.message, since=since, generation=meta.get("generation", 0))
        # Only this condition: status.conditions merges by type (strategic merge patch), so a write racing
        # ours for another condition (or another writer's) is kept, never replaced by our stale copy.
        body = {"status": {"conditions": [new]}}
        try:
            await asyncio.to_thread(self.api.patch, SERVICES, meta["name"], body, meta["namespace"],
                                    subresource="status", timeout=WRITE_TIMEOUT)
        except ApiError as exc:
            log.warning("could not write condition on %s/%s: %s", meta["namespace"], meta["name"], exc.reason)
            return
        except OSError as exc:  # no answer (timeout, reset): the next pass writes it again after RESAY_AFTER
            log.warning("could not write condition on %s/%s: %s", meta["namespace"], meta["name"], exc)
            return
        if repeated:  # the same words again (ours were replaced or lost): the Event was already recorded
            return
        # Health flaps change Forwarding's message, endpoints BGPAnnounced's nodes: an Event only on a flip.
        if ctype in (ConditionType.SERVICE_FORWARDING, ConditionType.SERVICE_BGP_ANNOUNCED):
            if flipped:
                await self._event(svc, cond.reason, cond.message, warning=not cond.true)
            return
        if first and cond.true:  # a first announcement: the condition just written names the node, one write
            return
        if cond.reason is AnnounceReason.WITHDRAWN:  # the Service is going: its condition is for the operator
            return
        reason = EventReason.NODE_ASSIGNED if cond.true else EventReason.NOT_ANNOUNCED
        await self._event(svc, reason, cond.message, warning=not cond.true)

    async def _event(self, svc: Mapping[str, Any], reason: Reason, message: str, warning: bool = False) -> None:
        await self.events.record(service_ref(svc), reason, message, warning=warning)


def condition_writer(key: str, decisions: list[Decision], svc: Mapping[str, Any] | None,
                     alive: frozenset[str]) -> str | None:
    """The one node that writes a Service's conditions: the announcing node; for a withdrawal, the node its
    condition last named as announcing when that one is alive (its word is the one that counts: it answered);
    otherwise the node elected among the alive ones for the Service's key."""
    announcing = [d.node for d in decisions if d.node]
    if announcing:
        return announcing[0]
    if svc is not None and decisions and all(d.reason is AnnounceReason.WITHDRAWN for d in decisions):
        named = sorted(n for n in announcers(svc.get("status")).values() if n in alive)
        if named:
            return named[0]
    return elect(key, alive)


def service_ref(svc: Mapping[str, Any]) -> ObjectRef:
    """The Event reference of a Service object."""
    meta = svc["metadata"]
    return ObjectRef("v1", "Service", meta["name"], meta.get("namespace"), meta.get("uid"))


def _current(svc: Mapping[str, Any], ctype: ConditionType) -> tuple[str, str, str] | None:
    c = find(svc.get("status"), ctype)
    return None if c is None else (c.get("status"), c.get("reason"), c.get("message"))
