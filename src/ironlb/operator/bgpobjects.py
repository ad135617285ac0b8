"""The Invalid condition of BGPPeers, BFDProfiles and BGPAdvertisements, and an Event when one turns invalid.

Admission checks each object alone. What shows only when they are read together (a BGPPeer naming a missing
BFDProfile or password Secret, an advertisement naming no existing pool or peer, an aggregation wider than its
pool ...) is found by the parser the speakers use (ironlb.api.bgp_parse) and said on the object by the operator,
its one writer: every speaker reads the same objects, and a condition several of them wrote would flap with
their informers' lag. The reason is the parser's BGPConfigReason; the Event goes through the operator's
recorder (aggregated and rate-limited as its other Events), once when the condition turns into a problem or
its message changes, as for pools and L2Advertisements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from ironlb.api.bgp import Problem
from ironlb.api.bgp_parse import parse_config
from ironlb.api.conditions import changed_since, condition
from ironlb.api.constants import API_VERSION, BFDPROFILE_KIND, BGPADVERTISEMENT_KIND, BGPPEER_KIND
from ironlb.api.reasons import BGPConfigReason, ConditionType
from ironlb.common.events import ObjectRef
from ironlb.common.informer import Informer, ResourceListWatch
from ironlb.common.kubeapi import IP_ADDRESS_POOLS, Client, Resource
from ironlb.common.kubeapi.resources import BFD_PROFILES, BGP_ADVERTISEMENTS, BGP_PEERS
from ironlb.common.named_secrets import PasswordSecrets, WatchSecret, informer_watch
from ironlb.operator.pools import condition_changed, is_problem, same_status
from ironlb.operator.writer import ApiWriter

log = logging.getLogger(__name__)
KINDS: dict[str, Resource] = {BGPPEER_KIND: BGP_PEERS, BFDPROFILE_KIND: BFD_PROFILES,
                              BGPADVERTISEMENT_KIND: BGP_ADVERTISEMENTS}
RETRY_S = 5.0
VALID_MESSAGE = "valid with the other BGP objects, the IPAddressPools and the password Secrets"


def invalid_condition(problems: list[Problem], previous: Mapping[str, Any], generation: int | None
                      ) -> dict[str, Any]:
    """The Invalid condition of an object with PROBLEMS: True with the first problem's reason, all messages."""
    ordered = sorted(problems, key=lambda p: (p.reason.value, p.message))
    reason = ordered[0].reason if ordered else BGPConfigReason.VALID
    message = "; ".join(p.message for p in ordered) or VALID_MESSAGE
    return condition(ConditionType.INVALID, bool(ordered), reason, message,
                     since=changed_since(previous, ConditionType.INVALID, bool(ordered)), generation=generation or 0)


def object_status(obj: Mapping[str, Any], problems: list[Problem], previous: Mapping[str, Any]) -> dict[str, Any]:
    """The status of a BGP object: the generation it describes and its Invalid condition."""
    generation = (obj.get("metadata") or {}).get("generation")
    return {"observedGeneration": generation or 0,
            "conditions": [invalid_condition(problems, previous, generation)]}


class BgpObjects:
    """The BGP objects, the pools' names and the password Secrets, watched; each object's status kept true."""

    def __init__(self, kube: Client, writer: ApiWriter, write_status: Callable[..., Any], namespace: str,
                 watch_secret: WatchSecret | None = None) -> None:
        self.kube, self.writer, self.write_status = kube, writer, write_status
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.pools: dict[str, dict[str, Any]] = {}
        self.secrets = PasswordSecrets(watch_secret or informer_watch(kube, namespace), lambda _: self._dirty.set())
        self.informers: list[Informer] = []
        self._written: dict[tuple[str, str], dict[str, Any]] = {}
        self._dirty = asyncio.Event()

    def on_event(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """A BGP object (KIND: BGPPeer ...) or, for kind "pools", an IPAddressPool changed."""
        name = str((obj.get("metadata") or {}).get("name", ""))
        known = self.pools if kind == "pools" else self.objects[kind]
        if event == "DELETED":
            known.pop(name, None)
            self._written.pop((kind, name), None)
        else:
            known[name] = obj
        if kind == BGPPEER_KIND:
            refs = ((p.get("spec") or {}).get("passwordSecret") for p in self.objects[BGPPEER_KIND].values())
            self.secrets.follow({str(r["name"]) for r in refs if isinstance(r, Mapping) and r.get("name")})
        self._dirty.set()

    def synced(self) -> bool:
        """Whether every watch has listed (before, a missing object may only not be listed yet)."""
        return all(i.synced.is_set() for i in self.informers) and not self.secrets.pending

    async def reconcile(self) -> None:
        """Parse the objects together; write each object's status where it changed, an Event where it turned bad."""
        config = parse_config(self.objects[BGPPEER_KIND].values(), self.objects[BFDPROFILE_KIND].values(),
                              self.objects[BGPADVERTISEMENT_KIND].values(), secrets=self.secrets.values,
                              pools=self.pools)
        for kind, objects in self.objects.items():
            for name, obj in sorted(objects.items()):
                await self._reconcile_one(kind, name, obj, config.problems_of(kind, name))

    async def _reconcile_one(self, kind: str, name: str, obj: Mapping[str, Any], problems: list[Problem]) -> None:
        shown = obj.get("status") or {}
        previous = self._written.get((kind, name))
        status = object_status(obj, problems, previous or shown)
        if same_status(previous or shown, status):
            self._written[(kind, name)] = status
            return
        if not (await self.write_status(KINDS[kind], name, status)).ok:
            return
        self._written[(kind, name)] = status
        cond = status["conditions"][0]
        if is_problem(cond) and condition_changed(previous or shown, cond):
            uid = (obj.get("metadata") or {}).get("uid")
            await self.writer.event(ObjectRef(API_VERSION, kind, name, None, uid), BGPConfigReason(cond["reason"]),
                                    cond["message"], warning=True)

    async def run(self) -> None:
        """Until cancelled: watch, and reconcile every object after each change (they are few)."""
        loop = asyncio.get_running_loop()
        self.informers = [Informer(f"bgp-{kind.lower()}", ResourceListWatch(self.kube, resource),
                                   lambda ev, obj, kind=kind: self.on_event(kind, ev, obj), loop)
                          for kind, resource in KINDS.items()]
        self.informers.append(Informer("bgp-pools", ResourceListWatch(self.kube, IP_ADDRESS_POOLS),
                                       lambda ev, obj: self.on_event("pools", ev, obj), loop))
        for informer in self.informers:
            informer.start()
        try:
            await asyncio.gather(*(i.synced.wait() for i in self.informers))
            self._dirty.set()
            while True:
                await self._dirty.wait()
                self._dirty.clear()
                if self.synced():
                    try:
                        await self.reconcile()
                    except Exception:  # the API refused or failed: logged, and tried again a little later
                        log.exception("BGP objects: status could not be written")
                        loop.call_later(RETRY_S, self._dirty.set)
        finally:
            for informer in self.informers:
                informer.stop()
            self.secrets.close()


@contextlib.asynccontextmanager
async def running(objects: BgpObjects) -> AsyncIterator[None]:
    """OBJECTS' status kept while the operator leads."""
    task = asyncio.get_running_loop().create_task(objects.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
