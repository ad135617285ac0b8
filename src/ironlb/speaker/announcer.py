"""The diff stage: desired announcements vs what each interface's responder owns now."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ironlb.common.throttle import Throttle
from ironlb.speaker.desired import ALL_INTERFACES
from ironlb.speaker.l2.responder import Responder


@dataclass(frozen=True)
class Interface:
    """A usable interface: name, index, MAC, IPv6 link-local address (for NA sources).

    `by_default`: answered on when an L2Advertisement names no interfaces (False for pod veths and
    other CNI interfaces, which are used only when named)."""

    name: str
    index: int
    mac: str
    link_local: str | None = None
    by_default: bool = True


@dataclass(frozen=True)
class Diff:
    """What one apply() changed: (ip, interface) pairs added and removed."""

    added: tuple[tuple[str, str], ...]
    removed: tuple[tuple[str, str], ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


log = logging.getLogger(__name__)
ResponderFactory = Callable[[Interface], Responder]
PACE_BATCH = 128  # gratuitous frames per loop turn, at most: heartbeats and replies go in between


class Bursts:
    """Gratuitous bursts for many IPs at once, paced: every frame of a burst is due `burst_gap_s` after
    the last, and at most PACE_BATCH frames go per turn of the loop. Thousands of IPs taken at once (a
    join, a relist) never hold the loop for all of them; one peer's IPs at a failover go in one turn."""

    def __init__(self) -> None:
        self.queue: deque[tuple[float, Responder, str, int]] = deque()  # (due, responder, ip, frames left)
        self.task: asyncio.Task[None] | None = None

    def add(self, responder: Responder, ip: str, frames: int) -> None:
        """Queue FRAMES gratuitous frames for IP on RESPONDER, the first one now."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (pure unit tests): nothing is sent
            return
        self.queue.append((loop.time(), responder, ip, frames))
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.queue:
            now, sent = loop.time(), 0
            # The queue stays ordered by due time: what is added is due now, what is re-queued later.
            while self.queue and sent < PACE_BATCH and self.queue[0][0] <= now:
                _, responder, ip, left = self.queue.popleft()
                if ip not in responder.owned:  # given up (or the responder closed) since
                    continue
                responder.announce_once(ip)
                sent += 1
                if left > 1:
                    self.queue.append((now + responder.burst_gap_s, responder, ip, left - 1))
            if self.queue:
                await asyncio.sleep(0 if sent == PACE_BATCH else max(0.0, self.queue[0][0] - loop.time()))

    def cancel(self) -> asyncio.Task[None] | None:
        """Stop; the task (if any) is returned for the caller to await."""
        self.queue.clear()
        if self.task is not None:
            self.task.cancel()
        return self.task


def resolve(desired: Mapping[str, frozenset[str]], interfaces: Mapping[str, Interface]) -> dict[str, set[str]]:
    """Interface -> IPs it should answer for ('*' means every interface usable by default)."""
    defaults = {name for name, i in interfaces.items() if i.by_default}
    want: dict[str, set[str]] = {}
    for ip, names in desired.items():
        targets = defaults if names == ALL_INTERFACES or "*" in names else names & interfaces.keys()
        for name in targets:
            want.setdefault(name, set()).add(ip)
    return want


class Announcer:
    """Keeps one Responder per interface in step with desired announcements."""

    def __init__(self, factory: ResponderFactory) -> None:
        self.factory = factory
        self.responders: dict[str, Responder] = {}
        self._interfaces: dict[str, Interface] = {}
        self.bursts = Bursts()
        self._errors = Throttle(30.0)

    def owned(self) -> dict[str, frozenset[str]]:
        """Interface -> IPs it answers for now."""
        # A copy first: metrics and readiness read this from another thread than the one that changes it.
        return {name: r.owned for name, r in list(self.responders.items()) if r.owned}

    def apply(self, desired: Mapping[str, frozenset[str]], interfaces: Mapping[str, Interface]) -> Diff:
        """Make the responders match DESIRED; gratuitous bursts for every newly owned (ip, interface)."""
        want = resolve(desired, interfaces)
        added: list[tuple[str, str]] = []
        removed: list[tuple[str, str]] = []
        for name in list(self.responders):
            changed = self._interfaces.get(name) != interfaces.get(name)
            if name not in want or changed:
                removed += [(ip, name) for ip in sorted(self.responders[name].owned)]
                self.responders.pop(name).close()
        for name, ips in sorted(want.items()):
            responder = self.responders.get(name)
            if responder is None:
                try:
                    responder = self.responders[name] = self.factory(interfaces[name])
                except OSError as exc:  # it vanished between netlink's report and now: the next report says so
                    if self._errors.allow(name) is not None:
                        log.warning("cannot answer on %s: %s", name, exc)
                    continue
            old = responder.owned
            responder.set_owned(frozenset(ips))
            added += [(ip, name) for ip in sorted(ips - old)]
            removed += [(ip, name) for ip in sorted(old - ips)]
            for ip in sorted(ips - old):
                self.bursts.add(responder, ip, responder.burst)
        self._interfaces = dict(interfaces)
        return Diff(tuple(added), tuple(removed))

    def reannounce(self) -> None:
        """Send one more gratuitous burst for everything owned (periodic refresh, optional)."""
        paced = sum(len(r.owned) for r in self.responders.values()) > PACE_BATCH  # a few go out at once
        for responder in self.responders.values():
            for ip in sorted(responder.owned):
                if paced:
                    self.bursts.add(responder, ip, 1)
                else:
                    responder.announce_once(ip)

    def close(self) -> list[asyncio.Task[None]]:
        """Stop answering everywhere; cancel the bursts under way (returned, for the caller to await)."""
        for responder in self.responders.values():
            responder.close()
        self.responders.clear()
        task = self.bursts.cancel()
        return [task] if task is not None else []
