"""A small list-and-watch informer feeding an asyncio callback; the operator (Services) and the
speaker (Services, EndpointSlices, Nodes, ...) both use it.

A blocking client (ironlb.common.kubeapi) watches in a thread; events hop to the event loop. A watch that ends
(server timeout, dropped connection) resumes from the last resourceVersion seen, bookmarks
included, so nothing is relisted. Only 410 Gone (the version was compacted away) relists, and the
relist is diffed against what was known: unchanged objects raise no event. Every request has a
timeout, so a half-open connection cannot freeze what the callers know. On API loss it retries
with backoff and keeps the last known objects, so callers keep acting on what they knew.

An optional transform (client-go's SetTransform) reduces each object, list items and watch events
alike, DELETED included, before it is kept or handed on: what a caller never reads is not held for
every object. A transform must keep metadata.name, namespace and resourceVersion (keys and relist
diffs are made of them). Lists come in pages: one page of whole objects at a time is in memory.

Where the objects come from is a ListWatch: ResourceListWatch asks the API server; tests script one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ironlb.common.kubeapi import ApiError, Client, Resource, Timeout

log = logging.getLogger(__name__)
Handler = Callable[[str, dict[str, Any]], None]  # (event type, object as dict)
Transform = Callable[[dict[str, Any]], dict[str, Any]]
LIST_TIMEOUT = (5.0, 60.0)  # (connect, read) seconds
WATCH_SECONDS = 60  # the server ends each watch after this long; we resume from the last version
WATCH_READ_TIMEOUT = WATCH_SECONDS + 15  # silence past this means a dead connection
# Objects per list request, as client-go's reflector pages: whole objects are parsed a page at a time and the
# reduced ones reuse the memory each page frees; an unpaged list left the whole objects' memory pinned
# (docs/design.md, "Measurements behind the code").
PAGE_SIZE = 500


class Gone(Exception):
    """The watched resourceVersion is too old (410): relist."""


class Watch(Protocol):
    """The events of one watch (dicts with `type` and `object`), until the server ends it or close()."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Each event as it arrives."""

    def close(self) -> None:
        """End the watch early."""


class ListWatch(Protocol):
    """Where an informer's objects come from; failures raise ApiError (410 recognised) or any other exception."""

    def list(self, *, limit: int | None, continue_token: str | None, timeout: Timeout) -> dict[str, Any]:
        """One page of the list: `items`, `metadata.resourceVersion` and `metadata.continue`."""

    def watch(self, *, resource_version: str, timeout_seconds: int, timeout: Timeout) -> Watch:
        """A watch from RESOURCE_VERSION, with bookmarks, ended by the server after TIMEOUT_SECONDS."""


class ResourceListWatch:
    """Lists and watches one resource through the API client (in NAMESPACE, else everywhere; PARAMS such as
    fieldSelector or labelSelector narrow both)."""

    def __init__(self, client: Client, resource: Resource, namespace: str | None = None, **params: str) -> None:
        self.client, self.resource, self.namespace, self.params = client, resource, namespace, params

    def list(self, *, limit: int | None, continue_token: str | None, timeout: Timeout) -> dict[str, Any]:
        """One page of the list."""
        return self.client.list(self.resource, self.namespace, timeout=timeout, limit=limit,
                                **{"continue": continue_token}, **self.params)

    def watch(self, *, resource_version: str, timeout_seconds: int, timeout: Timeout) -> Watch:
        """A watch from RESOURCE_VERSION."""
        return self.client.watch(self.resource, self.namespace, resource_version=resource_version,
                                 timeout_seconds=timeout_seconds, allow_bookmarks=True, timeout=timeout, **self.params)


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name')}"


def _version(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


def _stub(key: str, version: str | None) -> dict[str, Any]:
    """What a DELETED event found by a relist carries where only versions are kept: the object's identity."""
    namespace, _, name = key.partition("/")
    meta: dict[str, Any] = {"name": name, "resourceVersion": version}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta}


class Informer:
    """Lists then watches one resource; calls `handler(type, obj)` on the loop for each change."""

    def __init__(self, name: str, source: ListWatch, handler: Handler, loop: asyncio.AbstractEventLoop,
                 *, transform: Transform | None = None, keep_objects: bool = True) -> None:
        self.name, self.source, self.handler, self.loop = name, source, handler, loop
        self.transform = transform
        # A caller that keeps its own view of every object (the speaker) needs only versions here to diff a
        # relist: a second copy of every Service and slice would be held for nothing.
        self.keep_objects = keep_objects
        self.synced = asyncio.Event()
        self.connected = False
        self.counts = {"lists": 0, "watches": 0, "gone": 0, "errors": 0, "transform_errors": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"informer-{name}", daemon=True)
        self._known: dict[str, Any] = {}  # key -> the object, or only its resourceVersion (keep_objects False)
        self._lock = threading.Lock()  # _known is written by the watch thread, read from the loop

    def known(self) -> list[dict[str, Any]]:
        """The objects as last listed or watched (a copy; safe to read from the loop)."""
        if not self.keep_objects:
            raise RuntimeError(f"informer {self.name} keeps versions only, not objects")
        with self._lock:
            return list(self._known.values())

    def _held(self, obj: dict[str, Any]) -> Any:
        return obj if self.keep_objects else _version(obj)

    def _held_version(self, held: Any) -> str | None:
        return _version(held) if self.keep_objects else held

    def start(self) -> None:
        """Start watching in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the watch thread to stop."""
        self._stop.set()

    def _emit(self, kind: str, obj: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.handler, kind, obj)

    def _emit_all(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """EVENTS in order, a page of them per hop to the loop: each hop wakes the loop through a socket, once
        per object of a relist otherwise."""
        for start in range(0, len(events), PAGE_SIZE):
            self.loop.call_soon_threadsafe(self._deliver, events[start:start + PAGE_SIZE])

    def _deliver(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """On the loop: EVENTS to the handler; one that fails is reported as a failed callback is, and the rest
        are still delivered."""
        for kind, obj in events:
            try:
                self.handler(kind, obj)
            except Exception as exc:
                self.loop.call_exception_handler({"message": f"informer {self.name}: handler failed on {kind}",
                                                  "exception": exc})

    def _reduce(self, obj: dict[str, Any]) -> dict[str, Any]:
        """OBJ through the transform; whole if the transform fails (it costs memory, never an event)."""
        if self.transform is None:
            return obj
        try:
            return self.transform(obj)
        except Exception:
            self.counts["transform_errors"] += 1
            if self.counts["transform_errors"] == 1:  # one line, not one per object of a 10k-item list
                log.exception("transform of %s failed; keeping the object whole", self.name)
            return obj

    def relist(self) -> str:
        """List everything, emit the differences from what was known, return the list's resourceVersion."""
        try:
            seen, version = self._list(PAGE_SIZE)
        except ApiError as exc:
            if not exc.gone:
                raise
            # A continue token outlived its snapshot (compacted mid-list): list in one piece, as client-go does.
            log.info("paged list of %s expired; listing it in one piece", self.name)
            seen, version = self._list(None)
        self.counts["lists"] += 1
        held = {key: self._held(item) for key, item in seen.items()}
        with self._lock:
            before, self._known = self._known, held
        events: list[tuple[str, dict[str, Any]]] = []
        for key, item in seen.items():
            old = before.get(key)
            if old is None:
                events.append(("ADDED", item))
            elif self._held_version(old) != _version(item):
                events.append(("MODIFIED", item))
        for key, old in before.items():
            if key not in seen:
                events.append(("DELETED", old if self.keep_objects else _stub(key, old)))
        self._emit_all(events)
        return version

    def _list(self, page_size: int | None) -> tuple[dict[str, dict[str, Any]], str]:
        """Every object (reduced) by key, and the list's resourceVersion; in pages of PAGE_SIZE if given."""
        seen: dict[str, dict[str, Any]] = {}
        token: str | None = None
        while True:
            # A page's bytes go once parsed, each whole item once reduced: what is kept reuses their memory.
            body = self.source.list(limit=page_size, continue_token=token, timeout=LIST_TIMEOUT)
            items = body.pop("items", None) or []
            items.reverse()
            while items:
                item = self._reduce(items.pop())
                seen[_key(item)] = item
            meta = body.get("metadata") or {}
            if not page_size or not meta.get("continue"):
                return seen, meta.get("resourceVersion", "")
            token = meta["continue"]

    def watch_from(self, version: str) -> str:
        """Watch from VERSION until the server ends the watch; return the last version seen."""
        self.counts["watches"] += 1
        try:
            stream = self.source.watch(resource_version=version, timeout_seconds=WATCH_SECONDS,
                                       timeout=(LIST_TIMEOUT[0], WATCH_READ_TIMEOUT))
            try:
                for event in stream:
                    if self._stop.is_set():
                        break
                    version = self._apply(event) or version
            finally:
                stream.close()
        except ApiError as exc:
            if exc.gone:
                raise Gone() from exc
            raise
        return version

    def _apply(self, event: dict[str, Any]) -> str | None:
        """Apply one watch event; return its resourceVersion."""
        kind, obj = event["type"], event["object"]
        if kind == "ERROR":
            error = ApiError.from_status(obj)
            if error.gone:
                raise Gone() from error
            raise error
        if kind != "BOOKMARK":  # a bookmark only moves the version on
            obj = self._reduce(obj)
            with self._lock:
                if kind == "DELETED":
                    self._known.pop(_key(obj), None)
                else:
                    self._known[_key(obj)] = self._held(obj)
            self._emit(kind, obj)
        return _version(obj)

    def _run(self) -> None:
        backoff, version = 0.5, None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self.relist()
                    self.connected = True
                    self.loop.call_soon_threadsafe(self.synced.set)
                version = self.watch_from(version)
                backoff = 0.5
            except Gone:
                self.counts["gone"] += 1
                log.info("watch of %s: version %s is gone (compacted); relisting", self.name, version)
                version = None
            except Exception as exc:  # API down, timeouts, broken connections: keep what we know
                self.connected = False
                self.counts["errors"] += 1
                log.warning("watch of %s failed (%s); retrying in %.1fs", self.name, exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
