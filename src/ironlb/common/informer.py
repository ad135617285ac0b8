"""A small list-and-watch informer feeding an asyncio callback; the operator (Services) and the
speaker (Services, EndpointSlices, Nodes, ...) both use it.

The sync kubernetes client watches in a thread; events hop to the event loop. A watch that ends
(server timeout, dropped connection) resumes from the last resourceVersion seen, bookmarks
included, so nothing is relisted. Only 410 Gone (the version was compacted away) relists, and the
relist is diffed against what was known: unchanged objects raise no event. Every request has a
timeout, so a half-open connection cannot freeze what the callers know. On API loss it retries
with backoff and keeps the last known objects, so callers keep acting on what they knew.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kubernetes import watch
from kubernetes.client.rest import ApiException

log = logging.getLogger(__name__)
Handler = Callable[[str, dict[str, Any]], None]  # (event type, object as dict)
LIST_TIMEOUT = (5.0, 60.0)  # (connect, read) seconds
WATCH_SECONDS = 60  # the server ends each watch after this long; we resume from the last version
WATCH_READ_TIMEOUT = WATCH_SECONDS + 15  # silence past this means a dead connection


class Gone(Exception):
    """The watched resourceVersion is too old (410): relist."""


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name')}"


def _version(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


class Informer:
    """Lists then watches one resource; calls `handler(type, obj)` on the loop for each change."""

    def __init__(self, name: str, list_fn: Callable[..., Any], handler: Handler,
                 loop: asyncio.AbstractEventLoop, watch_factory: Callable[[], Any] = watch.Watch,
                 **list_kwargs: Any) -> None:
        self.name, self.list_fn, self.handler, self.loop = name, list_fn, handler, loop
        self.watch_factory = watch_factory
        self.list_kwargs = list_kwargs
        self.synced = asyncio.Event()
        self.connected = False
        self.counts = {"lists": 0, "watches": 0, "gone": 0, "errors": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"informer-{name}", daemon=True)
        self._known: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()  # _known is written by the watch thread, read from the loop

    def known(self) -> list[dict[str, Any]]:
        """The objects as last listed or watched (a copy; safe to read from the loop)."""
        with self._lock:
            return list(self._known.values())

    def start(self) -> None:
        """Start watching in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the watch thread to stop."""
        self._stop.set()

    def _emit(self, kind: str, obj: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.handler, kind, obj)

    def relist(self) -> str:
        """List everything, emit the differences from what was known, return the list's resourceVersion."""
        raw = self.list_fn(_preload_content=False, _request_timeout=LIST_TIMEOUT, **self.list_kwargs)
        body = json.loads(raw.data)
        self.counts["lists"] += 1
        seen = {_key(item): item for item in body.get("items", [])}
        with self._lock:
            before, self._known = self._known, seen
        for key, item in seen.items():
            old = before.get(key)
            if old is None:
                self._emit("ADDED", item)
            elif _version(old) != _version(item):
                self._emit("MODIFIED", item)
        for key, item in before.items():
            if key not in seen:
                self._emit("DELETED", item)
        return (body.get("metadata") or {}).get("resourceVersion", "")

    def watch_from(self, version: str) -> str:
        """Watch from VERSION until the server ends the watch; return the last version seen."""
        stream = self.watch_factory()
        self.counts["watches"] += 1
        try:
            events: Iterable[dict[str, Any]] = stream.stream(
                self.list_fn, resource_version=version, timeout_seconds=WATCH_SECONDS, allow_watch_bookmarks=True,
                _request_timeout=(LIST_TIMEOUT[0], WATCH_READ_TIMEOUT), **self.list_kwargs)
            for event in events:
                if self._stop.is_set():
                    break
                version = self._apply(event) or version
        except ApiException as exc:
            if exc.status == 410:
                raise Gone() from exc
            raise
        finally:
            stream.stop()
        return version

    def _apply(self, event: dict[str, Any]) -> str | None:
        """Apply one watch event; return its resourceVersion."""
        kind, obj = event["type"], event["raw_object"]
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise ApiException(status=obj.get("code"), reason=obj.get("message"))
        if kind != "BOOKMARK":  # a bookmark only moves the version on
            with self._lock:
                if kind == "DELETED":
                    self._known.pop(_key(obj), None)
                else:
                    self._known[_key(obj)] = obj
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
