"""The diff stage: desired announcements vs what each interface's responder owns now."""

from __future__ import annotations

import asyncio
import logging
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
        self._tasks: set[asyncio.Task[None]] = set()
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
                self._spawn(responder.announce(ip))
        self._interfaces = dict(interfaces)
        return Diff(tuple(added), tuple(removed))

    def reannounce(self) -> None:
        """Send one more gratuitous burst for everything owned (periodic refresh, optional)."""
        for responder in self.responders.values():
            for ip in sorted(responder.owned):
                responder.announce_once(ip)

    def _spawn(self, coro: object) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        except RuntimeError:  # no loop (pure unit tests): send the first frame synchronously
            coro.close()  # type: ignore[attr-defined]
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """Stop answering everywhere."""
        for responder in self.responders.values():
            responder.close()
        self.responders.clear()
