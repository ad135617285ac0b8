"""Which Services may be showing each IP in their status: the guard behind "never two at once".

The allocator knows who is *granted* an IP; what users and kube-proxy see is what Service status
*shows*. The two differ while writes are in flight: an IP freed from Service A (its pool was
deleted) is still in A's status until A's clear lands. Before the operator writes an IP into
Service B's status, it checks here that no Service other than the IP's grantees may show it.

A Service may show an IP if its last observed status has it, or a write that adds it has been
issued and not yet settled. Both err on the side of "shown": a stale watch event can only delay
a write, never let two Services show one IP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


class ShownIPs:
    """IP -> keys of the Services whose status may show it (observed, or being written)."""

    def __init__(self) -> None:
        self._observed: dict[str, tuple[str, ...]] = {}
        self._writing: dict[str, tuple[str, ...]] = {}
        # Nearly every IP is shown by one Service: its key alone, a set only for a shared or moving IP.
        self._by_ip: dict[str, str | set[str]] = {}

    def observe(self, key: str, ips: Iterable[str]) -> None:
        """The watch (or a write that landed) says KEY's status shows IPS."""
        self._reindex(key, lambda: self._observed.__setitem__(key, tuple(ips)))

    def forget(self, key: str) -> None:
        """KEY was deleted: it shows nothing."""
        self._reindex(key, lambda: (self._observed.pop(key, None), self._writing.pop(key, None)))

    def writing(self, key: str, ips: Iterable[str]) -> None:
        """A write that makes KEY show IPS is about to be issued."""
        self._reindex(key, lambda: self._writing.__setitem__(key, tuple(ips)))

    def settled(self, key: str, landed: bool) -> None:
        """KEY's write finished: if it LANDED, its status now shows what was written."""
        def update() -> None:
            ips = self._writing.pop(key, None)
            if landed and ips is not None:
                self._observed[key] = ips
        self._reindex(key, update)

    def shown_by(self, key: str) -> set[str]:
        """Every IP KEY's status may show."""
        return {*self._observed.get(key, ()), *self._writing.get(key, ())}

    def showing(self, ip: str) -> set[str]:
        """Keys of the Services whose status may show IP."""
        found = self._by_ip.get(ip)
        if found is None:
            return set()
        return {found} if isinstance(found, str) else set(found)

    def _reindex(self, key: str, change: Callable[[], object]) -> None:
        before = self.shown_by(key)
        change()
        after = self.shown_by(key)
        for ip in before - after:
            self._drop(ip, key)
        for ip in after - before:
            self._add(ip, key)

    def _add(self, ip: str, key: str) -> None:
        found = self._by_ip.get(ip)
        if found is None:
            self._by_ip[ip] = key
        elif isinstance(found, str):
            if found != key:
                self._by_ip[ip] = {found, key}
        else:
            found.add(key)

    def _drop(self, ip: str, key: str) -> None:
        found = self._by_ip.get(ip)
        if found == key:
            del self._by_ip[ip]
        elif isinstance(found, set):
            found.discard(key)
            if len(found) == 1:
                self._by_ip[ip] = found.pop()
