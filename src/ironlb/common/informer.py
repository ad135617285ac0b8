"""A small list-and-watch informer feeding an asyncio callback, for the speaker.

The sync kubernetes client watches in a thread; events hop to the event loop. On API loss it
retries with backoff and keeps the last known objects, so callers keep acting on what they knew.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import watch
from kubernetes.client.rest import ApiException

log = logging.getLogger(__name__)
Handler = Callable[[str, dict[str, Any]], None]  # (event type, object as dict)


class Informer:
    """Lists then watches one resource; calls `handler(type, obj)` on the loop for each change."""

    def __init__(self, name: str, list_fn: Callable[..., Any], handler: Handler,
                 loop: asyncio.AbstractEventLoop, **list_kwargs: Any) -> None:
        self.name, self.list_fn, self.handler, self.loop = name, list_fn, handler, loop
        self.list_kwargs = list_kwargs
        self.synced = asyncio.Event()
        self.connected = False
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

    def _relist(self) -> str:
        """List everything, emit the differences since the last list, return the resourceVersion."""
        raw = self.list_fn(_preload_content=False, **self.list_kwargs)
        import json

        body = json.loads(raw.data)
        seen: dict[str, dict[str, Any]] = {}
        for item in body.get("items", []):
            meta = item.get("metadata", {})
            key = f"{meta.get('namespace', '')}/{meta.get('name')}"
            seen[key] = item
            with self._lock:
                existed = key in self._known
            self._emit("MODIFIED" if existed else "ADDED", item)
        with self._lock:
            gone = [item for key, item in self._known.items() if key not in seen]
            self._known = seen
        for item in gone:
            self._emit("DELETED", item)
        return body.get("metadata", {}).get("resourceVersion", "")

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                version = self._relist()
                self.connected = True
                self.loop.call_soon_threadsafe(self.synced.set)
                backoff = 0.5
                stream = watch.Watch()
                for event in stream.stream(self.list_fn, resource_version=version, timeout_seconds=240,
                                           allow_watch_bookmarks=True, _request_timeout=270, **self.list_kwargs):
                    if self._stop.is_set():
                        stream.stop()
                        break
                    kind, obj = event["type"], event["raw_object"]
                    if kind == "BOOKMARK":
                        continue
                    if kind == "ERROR":
                        break  # e.g. 410 Gone: relist
                    meta = obj.get("metadata", {})
                    key = f"{meta.get('namespace', '')}/{meta.get('name')}"
                    with self._lock:
                        if kind == "DELETED":
                            self._known.pop(key, None)
                        else:
                            self._known[key] = obj
                    self._emit(kind, obj)
            except (ApiException, OSError, ValueError, Exception) as exc:
                self.connected = False
                log.warning("watch of %s failed (%s); retrying in %.1fs", self.name, exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
