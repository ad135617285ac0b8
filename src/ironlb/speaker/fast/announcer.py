"""The diff stage: desired announcements vs what each interface's responder owns now."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from ironlb.common.throttle import Throttle
from ironlb.speaker.fast.l2.responder import Responder
from ironlb.speaker.state.snapshot import ALL_INTERFACES


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
    defaults = frozenset(name for name, i in interfaces.items() if i.by_default)
    want: dict[str, set[str]] = {}
    for ip, names in desired.items():
        for name in targets(names, interfaces, defaults):
            want.setdefault(name, set()).add(ip)
    return want


def targets(names: frozenset[str] | None, interfaces: Mapping[str, Interface],
            defaults: frozenset[str]) -> frozenset[str]:
    """The interfaces an IP desired on NAMES is answered on ('*': DEFAULTS, the ones usable by default)."""
    if not names:
        return frozenset()
    return defaults if names == ALL_INTERFACES or "*" in names else names & interfaces.keys()


class Announcer:
    """Keeps one Responder per interface in step with desired announcements."""

    def __init__(self, factory: ResponderFactory) -> None:
        self.factory = factory
        self.responders: dict[str, Responder] = {}
        self._interfaces: dict[str, Interface] = {}
        self.bursts = Bursts()
        self._errors = Throttle(30.0)
        self._placed: dict[str, frozenset[str]] = {}  # IP -> the interfaces whose responders own it
        self._defaults: frozenset[str] = frozenset()  # of self._interfaces, the ones usable by default
        # IP -> the interfaces it is answered on for a held peer, and that peer's MAC (read by the plane)
        self.covers: dict[str, tuple[frozenset[str], bytes]] = {}
        self._covered_on: dict[str, frozenset[str]] = {}  # IP -> the interfaces whose responders answer it so

    def placed(self, ip: str) -> frozenset[str]:
        """The interfaces whose responders answer IP as their own."""
        return self._placed.get(ip, frozenset())

    def owned(self) -> dict[str, frozenset[str]]:
        """Interface -> IPs it answers for now."""
        # Copies: the responders' sets change in place.
        return {name: frozenset(r.owned) for name, r in list(self.responders.items()) if r.owned}

    def apply(self, desired: Mapping[str, frozenset[str]], interfaces: Mapping[str, Interface],
              changed: Collection[str] | None = None) -> Diff:
        """Make the responders match DESIRED; gratuitous bursts for every newly owned (ip, interface).

        CHANGED: the only IPs whose entry in DESIRED moved since the last call, the interfaces being
        the same; then the cost is O(those IPs), not O(every IP owned)."""
        if changed is None or dict(interfaces) != self._interfaces:
            return self._apply_all(desired, interfaces)
        return self._apply_some(desired, changed)

    def _apply_all(self, desired: Mapping[str, frozenset[str]], interfaces: Mapping[str, Interface]) -> Diff:
        want = resolve(desired, interfaces)
        added: list[tuple[str, str]] = []
        removed: list[tuple[str, str]] = []
        for name in list(self.responders):
            changed = self._interfaces.get(name) != interfaces.get(name)
            if (name not in want and not self.responders[name].covered) or changed:
                removed += [(ip, name) for ip in sorted(self.responders[name].owned)]
                self.responders.pop(name).close()
        self._interfaces = dict(interfaces)
        self._defaults = frozenset(name for name, i in interfaces.items() if i.by_default)
        for name, ips in sorted(want.items()):
            responder = self._responder(name)
            if responder is None:
                continue
            old = set(responder.owned)
            responder.set_owned(ips)
            added += [(ip, name) for ip in sorted(ips - old)]
            removed += [(ip, name) for ip in sorted(old - ips)]
            for ip in sorted(ips - old):
                self.bursts.add(responder, ip, responder.burst)
        self._placed = {}
        for name, responder in self.responders.items():
            for ip in responder.owned:
                self._placed[ip] = self._placed.get(ip, frozenset()) | {name}
        self._covered_on = {}  # a responder closed above took its covers along: all placed again
        self.cover(dict(self.covers))
        return Diff(tuple(added), tuple(removed))

    def _apply_some(self, desired: Mapping[str, frozenset[str]], changed: Collection[str]) -> Diff:
        adds: dict[str, list[str]] = {}
        drops: dict[str, list[str]] = {}
        for ip in changed:
            new = targets(desired.get(ip), self._interfaces, self._defaults)
            old = self._placed.pop(ip, frozenset())
            for name in old - new:
                drops.setdefault(name, []).append(ip)
            for name in new - old:
                adds.setdefault(name, []).append(ip)
            if new:
                self._placed[ip] = new  # what the factory cannot open is taken back below
        added: list[tuple[str, str]] = []
        removed: list[tuple[str, str]] = []
        for name, ips in sorted(drops.items()):
            responder = self.responders[name]
            responder.change((), ips)
            removed += [(ip, name) for ip in sorted(ips)]
            if not responder.owned and not responder.covered:
                self.responders.pop(name).close()
        for name, ips in sorted(adds.items()):
            responder = self._responder(name)
            if responder is None:
                for ip in ips:
                    self._placed[ip] -= {name}
                continue
            responder.change(ips, ())
            for ip in sorted(ips):
                added.append((ip, name))
                self.bursts.add(responder, ip, responder.burst)
        return Diff(tuple(added), tuple(removed))

    def cover(self, changes: Mapping[str, tuple[frozenset[str], bytes] | None]) -> None:
        """Answer each IP of CHANGES on its interfaces at a held peer's MAC (None: no longer). No gratuitous
        frames: the clients' entries name that MAC already."""
        per_name: dict[str, dict[str, bytes | None]] = {}
        for ip, cover in changes.items():
            new = targets(cover[0], self._interfaces, self._defaults) if cover is not None else frozenset()
            old = self._covered_on.pop(ip, frozenset())
            for name in old - new:
                per_name.setdefault(name, {})[ip] = None
            for name in new:
                per_name.setdefault(name, {})[ip] = cover[1] if cover is not None else None
            if cover is None:
                self.covers.pop(ip, None)
            else:
                self.covers[ip] = cover
                if new:
                    self._covered_on[ip] = new
        for name, ips in sorted(per_name.items()):
            responder = self.responders.get(name) if all(m is None for m in ips.values()) else self._responder(name)
            if responder is None:
                continue
            responder.cover(ips)
            if not responder.owned and not responder.covered:
                self.responders.pop(name).close()

    def _responder(self, name: str) -> Responder | None:
        """NAME's responder, opened if need be (None: the interface vanished meanwhile)."""
        responder = self.responders.get(name)
        if responder is None:
            try:
                responder = self.responders[name] = self.factory(self._interfaces[name])
            except OSError as exc:  # it vanished between netlink's report and now: the next report says so
                if self._errors.allow(name) is not None:
                    log.warning("cannot answer on %s: %s", name, exc)
        return responder

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
        self.covers, self._covered_on = {}, {}
        task = self.bursts.cancel()
        return [task] if task is not None else []
