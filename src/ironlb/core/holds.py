"""Reuse holds: an IP a Service released stays reserved for that Service's namespace for a while.

Without them, a Service in another namespace that asks for the IP gets it the moment its owner
deletes and recreates its Service (squatting). A hold ends at a time given by the caller's clock;
the allocator asks for the holds that ended, so nothing here reads a clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

IP = tuple[str, int]  # (family, integer)


@dataclass(frozen=True)
class Hold:
    """IP kept for NAMESPACE (its last holder was Service KEY, in POOL) until UNTIL."""

    ip: IP
    namespace: str
    key: str
    pool: str
    until: float

    def refuses(self, namespace: str, now: float) -> bool:
        """True when the hold keeps the IP from a Service in NAMESPACE at NOW."""
        return namespace != self.namespace and now < self.until


class Holds:
    """The current holds, by IP, by namespace, and by end time (ending in O(log n) each)."""

    def __init__(self) -> None:
        self._by_ip: dict[IP, Hold] = {}
        self._by_namespace: dict[str, set[IP]] = {}
        self._ends: list[tuple[float, IP]] = []  # may hold stale entries: checked against _by_ip

    def __len__(self) -> int:
        return len(self._by_ip)

    def __iter__(self) -> Iterator[Hold]:
        return iter(list(self._by_ip.values()))

    def get(self, ip: IP) -> Hold | None:
        """The hold on IP, if any."""
        return self._by_ip.get(ip)

    def add(self, hold: Hold) -> None:
        """Hold an IP (replacing an earlier hold on it)."""
        self.pop(hold.ip)
        self._by_ip[hold.ip] = hold
        self._by_namespace.setdefault(hold.namespace, set()).add(hold.ip)
        heapq.heappush(self._ends, (hold.until, hold.ip))

    def pop(self, ip: IP) -> Hold | None:
        """End the hold on IP now (taken again, or its pool no longer covers it)."""
        hold = self._by_ip.pop(ip, None)
        if hold is not None:
            ips = self._by_namespace.get(hold.namespace, set())
            ips.discard(ip)
            if not ips:
                self._by_namespace.pop(hold.namespace, None)
        return hold

    def of_namespace(self, namespace: str) -> list[Hold]:
        """The holds kept for NAMESPACE."""
        return [self._by_ip[ip] for ip in self._by_namespace.get(namespace, ())]

    def ended(self, now: float) -> list[Hold]:
        """Remove and return the holds whose time is up at NOW."""
        out: list[Hold] = []
        while self._ends and self._ends[0][0] <= now:
            until, ip = heapq.heappop(self._ends)
            hold = self._by_ip.get(ip)
            if hold is not None and hold.until == until:
                self.pop(ip)
                out.append(hold)
        return out

    def next_end(self) -> float | None:
        """When the earliest hold ends (None: no holds)."""
        while self._ends and (self._by_ip.get(self._ends[0][1]) is None
                              or self._by_ip[self._ends[0][1]].until != self._ends[0][0]):
            heapq.heappop(self._ends)  # stale: that hold was taken or replaced
        return self._ends[0][0] if self._ends else None
