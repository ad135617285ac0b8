"""Secrets watched by name and kept in memory: BGP mode's password Secrets, each one a BGPPeer names.

The chart lets the speaker and the operator read only the Secrets listed in `bgpPasswordSecrets` (RBAC
resourceNames), so each one is watched on its own, with a field selector on its name (a list of the namespace's
Secrets would be refused). A peer event reads no Secret; a rotated password is seen as soon as the watch sees it
(the speaker's BGP feed then re-renders only the peers that name it; the operator says a missing one on the peer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from functools import partial
from typing import Any, Protocol

from ironlb.common.informer import Informer, ResourceListWatch
from ironlb.common.kubeapi import SECRETS, Client

log = logging.getLogger(__name__)
SYNCED = "SYNCED"  # the watch's first list is in: a Secret still absent then does not exist
# A watch whose first list has not come in by then (refused: a Secret the chart's bgpPasswordSecrets does not
# list; or the API away) counts as listed: its Secret is said missing rather than never.
LIST_WAIT_S = 10.0
Handler = Callable[[str, dict[str, Any]], None]


class Stoppable(Protocol):
    """A running watch."""

    def stop(self) -> None: ...


WatchSecret = Callable[[str, Handler], Stoppable]


def kept(obj: dict[str, Any]) -> dict[str, Any]:
    """What the parser reads of a Secret: its name, type and data (labels, annotations and managed fields go)."""
    meta = obj.get("metadata") or {}
    return {"metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                         "resourceVersion": meta.get("resourceVersion")},
            "type": obj.get("type"), "data": obj.get("data") or {}}


class PasswordSecrets:
    """The Secrets the BGPPeers name, by name: watched while a peer names them, forgotten after."""

    def __init__(self, watch: WatchSecret, on_change: Callable[[str], None]) -> None:
        self._watch, self._on_change = watch, on_change
        self.values: dict[str, dict[str, Any]] = {}  # name -> type and data, as the parser reads them
        self.pending: set[str] = set()  # watched, first list not in yet
        self._watches: dict[str, Stoppable] = {}

    def follow(self, names: Collection[str]) -> None:
        """Watch exactly NAMES: new ones start, ones no peer names any more stop and are forgotten."""
        for name in sorted(set(names) - self._watches.keys()):
            self.pending.add(name)
            self._watches[name] = self._watch(name, partial(self._on_event, name))
        for name in sorted(self._watches.keys() - set(names)):
            self._watches.pop(name).stop()
            self.pending.discard(name)
            self.values.pop(name, None)

    def _on_event(self, name: str, event: str, obj: dict[str, Any]) -> None:
        if name not in self._watches:
            return  # a watch stopped a moment ago
        if event == SYNCED:
            if name in self.pending:
                self.pending.discard(name)
                self._on_change(name)
            return
        new = None if event == "DELETED" else {"type": obj.get("type"), "data": obj.get("data") or {}}
        if self.values.get(name) == new:
            return
        if new is None:
            self.values.pop(name)
        else:
            self.values[name] = new
        self._on_change(name)

    def close(self) -> None:
        """Stop every watch."""
        self.follow(())


def informer_watch(api: Client, namespace: str) -> WatchSecret:
    """Watches of one Secret each in NAMESPACE, by a field selector on its name (what resourceNames allows)."""

    def watch(name: str, handler: Handler) -> Stoppable:
        source = ResourceListWatch(api, SECRETS, namespace, fieldSelector=f"metadata.name={name}")
        loop = asyncio.get_running_loop()
        informer = Informer(f"bgp-secret-{name}", source, handler, loop, transform=kept)
        informer.start()
        synced = loop.create_task(_listed(informer))
        synced.add_done_callback(lambda task: task.cancelled() or handler(SYNCED, {}))
        return _Watch(informer, synced)

    return watch


async def _listed(informer: Informer) -> None:
    try:
        await asyncio.wait_for(informer.synced.wait(), LIST_WAIT_S)
    except TimeoutError:
        log.warning("%s: not listed within %.0f s (is the Secret in the chart's bgpPasswordSecrets?): taken as "
                    "missing until it is", informer.name, LIST_WAIT_S)


class _Watch:
    def __init__(self, informer: Informer, synced: asyncio.Task[Any]) -> None:
        self.informer, self.synced = informer, synced

    def stop(self) -> None:
        self.synced.cancel()
        self.informer.stop()
