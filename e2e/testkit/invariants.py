"""An independent checker of what users see: every version of every Service, as the API serves it.

It watches all Services (list, then watch from that version, resuming; a relist on 410) and, on
every event, checks that no IP is shown in status.loadBalancer.ingress by two Services unless both
carry the same non-empty allow-shared-ip key. Watching, not sampling, sees every intermediate
state the API server stored. It is separate from IronLB's code on purpose: it shares none of it.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from e2e.lab.kube import core_api

SHARE_KEYS = ("ironlb.io/allow-shared-ip", "metallb.io/allow-shared-ip", "metallb.universe.tf/allow-shared-ip")


@dataclass(frozen=True)
class Shown:
    """What one Service shows: its ingress IPs and its sharing key."""

    ips: tuple[str, ...]
    share: str | None


@dataclass
class Violation:
    """One moment at which an IP was shown twice."""

    at: float
    ip: str
    services: tuple[str, ...]


def shown_of(obj: Any) -> Shown:
    """Ingress IPs and sharing key of a Service model object."""
    ingress = (obj.status.load_balancer.ingress if obj.status and obj.status.load_balancer else None) or []
    annotations = obj.metadata.annotations or {}
    share = next((annotations[k] for k in SHARE_KEYS if annotations.get(k)), None)
    return Shown(tuple(i.ip for i in ingress if i.ip), share)


@dataclass
class DuplicateIPChecker:
    """Watches Services in a thread and records every moment an IP is shown by two non-sharing Services."""

    violations: list[Violation] = field(default_factory=list)
    events: int = 0
    relists: int = 0
    shown: dict[str, Shown] = field(default_factory=dict)
    history: dict[str, list[tuple[float, tuple[str, ...]]]] = field(default_factory=lambda: defaultdict(list))
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _by_ip: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def start(self) -> DuplicateIPChecker:
        """Start watching; returns once the first list has been checked."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="dup-ip-checker", daemon=True)
        self._thread.start()
        ready.wait(30)
        return self

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(35)

    def __enter__(self) -> DuplicateIPChecker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _update(self, key: str, new: Shown | None) -> None:
        old = self.shown.pop(key, None)
        for ip in old.ips if old else ():
            self._by_ip[ip].discard(key)
        if new is not None:
            self.shown[key] = new
            for ip in new.ips:
                self._by_ip[ip].add(key)
        if (old.ips if old else ()) != (new.ips if new else ()):
            self.history[key].append((time.monotonic(), new.ips if new else ()))
        for ip in new.ips if new else ():
            self._check(ip)

    def _check(self, ip: str) -> None:
        keys = sorted(self._by_ip[ip])
        if len(keys) < 2:
            return
        shares = {self.shown[k].share for k in keys}
        if len(shares) != 1 or None in shares:
            self.violations.append(Violation(time.monotonic(), ip, tuple(keys)))

    def _relist(self, core: client.CoreV1Api) -> str:
        listed = core.list_service_for_all_namespaces(_request_timeout=30)
        self.relists += 1
        seen = {f"{s.metadata.namespace}/{s.metadata.name}": s for s in listed.items}
        for key in [k for k in self.shown if k not in seen]:
            self._update(key, None)
        for key, obj in seen.items():
            self._update(key, shown_of(obj))
        return listed.metadata.resource_version

    def _run(self, ready: threading.Event) -> None:
        core = core_api()
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._relist(core)
                    ready.set()
                stream = watch.Watch()
                for event in stream.stream(core.list_service_for_all_namespaces, resource_version=version,
                                           timeout_seconds=5, allow_watch_bookmarks=True, _request_timeout=20):
                    obj = event["object"]
                    version = obj.metadata.resource_version or version
                    if event["type"] == "BOOKMARK":
                        continue
                    self.events += 1
                    key = f"{obj.metadata.namespace}/{obj.metadata.name}"
                    self._update(key, None if event["type"] == "DELETED" else shown_of(obj))
                    if self._stop.is_set():
                        break
            except ApiException as exc:
                if exc.status == 410:
                    version = None
                else:
                    time.sleep(0.2)
            except Exception:  # the API server restarting under a chaos run: resume from the version
                time.sleep(0.2)
