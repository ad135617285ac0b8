"""The fast plane: heartbeats, failure detection and the ARP/NDP responders, on a thread of their own.

It runs its own selector event loop, so no amount of control-plane work (10,000 Services relisted,
Events written, nftables applied) sits between a heartbeat and its send, or a request and its reply.
What crosses planes: the ranking table (immutable, swapped by reference), and small messages through
`call_soon_threadsafe` in each direction. Ownership is decided here: on an alive-set change only the
IPs the changed peers rank before this node are looked at; the control plane is told afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from ironlb.speaker.announcer import Announcer, Interface, ResponderFactory
from ironlb.speaker.liveness.membership import Membership
from ironlb.speaker.liveness.protocol import KeySet
from ironlb.speaker.liveness.transport import Liveness
from ironlb.speaker.ranking import Table

log = logging.getLogger(__name__)
T = TypeVar("T")
# IPs re-decided per turn of the fast loop: a relist can change thousands at once, and heartbeats and
# replies must not wait behind all of them (256 decisions over 100 ranked nodes: 0.4 ms, before the
# responders are brought in line).
TAKE_BATCH = 256
AliveHook = Callable[[frozenset[str]], None]


class FastPlane:
    """Owns the Liveness and the Announcer; consumes published tables; reports alive-set changes."""

    def __init__(self, me: str, key: bytes | KeySet, port: int, factory: Callable[[asyncio.AbstractEventLoop],
                 ResponderFactory], on_alive: AliveHook, control: asyncio.AbstractEventLoop,
                 interval: float = 0.1, timeout: float = 0.4) -> None:
        self.me, self.control, self.on_alive = me, control, on_alive
        self.loop = asyncio.new_event_loop()
        self.liveness = Liveness(me, key, port, self._alive_changed, interval=interval, timeout=timeout)
        self.announcer = Announcer(factory(self.loop))
        self.table = Table(me=me)  # the version applied here; the control plane swaps in newer ones
        self.interfaces: dict[str, Interface] = {}
        self.owned: dict[str, frozenset[str]] = {}  # IP -> interfaces: what this node answers for now
        self._alive: frozenset[str] = self.liveness.alive
        self._latest: Table | None = None
        self._published = self.table  # the version the pending IPs were diffed against
        self._pending: set[str] = set()  # IPs whose entries changed in a published table, not re-decided yet
        self._taking = False  # a _take_table is queued on the fast loop
        self._lock = threading.Lock()  # _latest, _pending, _taking: written by both threads
        self._thread = threading.Thread(target=self._run, name="ironlb-fast-plane", daemon=True)

    # -- control-plane side (any thread) --------------------------------------------------------------

    def start(self, port_host: str = "::") -> None:
        """Start the thread and bind the heartbeat socket (raises if the port cannot be bound)."""
        self._thread.start()
        self.call(self.liveness.start(port_host)).result()

    def call(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run a coroutine on the fast plane's loop."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def publish(self, table: Table) -> None:
        """Hand over a new table. The diff against the last one is made here, on the control plane's
        time; the fast loop then re-decides only the IPs that changed, a batch per turn."""
        if table is self._published:
            return
        changed = table.by_ip.changed_keys(self._published.by_ip)
        self._published = table
        with self._lock:
            self._latest = table
            self._pending |= changed
            schedule, self._taking = not self._taking, True
        if schedule:
            self.loop.call_soon_threadsafe(self._take_table)

    def set_interfaces(self, interfaces: Mapping[str, Interface]) -> None:
        """The usable interfaces changed."""
        self.loop.call_soon_threadsafe(self._take_interfaces, dict(interfaces))

    def set_peers(self, peers: dict[str, str], addresses: dict[str, set[str]]) -> None:
        """The Node list changed: whom to heartbeat, and from where each may speak."""
        self.loop.call_soon_threadsafe(self.liveness.set_peers, peers, addresses)

    @property
    def membership(self) -> Membership:
        """The peer table (read from the control plane: what is heard, what is known)."""
        return self.liveness.membership

    def fence(self) -> None:
        """Stop counting ourselves and send FENCED heartbeats (self-fencing); `join()` undoes it."""
        self.loop.call_soon_threadsafe(self.liveness.fence)

    async def join(self) -> None:
        """Join the election (heartbeats out; count ourselves after one detection period)."""
        await asyncio.wrap_future(self.call(self.liveness.join()))

    async def close(self) -> None:
        """Stop answering, say goodbye to peers, stop the thread."""
        if self._thread.is_alive():
            await asyncio.wrap_future(self.call(self._close()))
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.to_thread(self._thread.join, 5.0)
        if not self.loop.is_running():
            self.loop.close()

    @property
    def alive(self) -> frozenset[str]:
        """Alive nodes as the fast plane last saw them (itself included once joined)."""
        return self._alive

    # -- fast-plane side (its own thread) -------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            log.debug("fast plane stopped")

    async def _close(self) -> None:
        self.announcer.close()
        self.owned = {}
        await self.liveness.close()
        # The heartbeat loop and any gratuitous burst still under way end here, not destroyed pending.
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def _take_table(self) -> None:
        with self._lock:
            if self._latest is not None:
                self.table = self._latest
            batch = [self._pending.pop() for _ in range(min(TAKE_BATCH, len(self._pending)))]
            self._taking = bool(self._pending)
        self._update(batch)
        if self._taking:  # the rest on the next turn, after the timers and sockets that are due
            self.loop.call_soon(self._take_table)

    def _take_interfaces(self, interfaces: dict[str, Interface]) -> None:
        self.interfaces = interfaces
        self._apply()

    def _alive_changed(self, alive: frozenset[str]) -> None:
        old, self._alive = self._alive, alive
        changed = old ^ alive
        if self.me in changed:  # joined (or left): every IP that ranks us may be ours now
            self._update(self.table.mine)
        else:
            self._update(ip for peer in changed for ip in self.table.affected_by(peer))
        self.control.call_soon_threadsafe(self.on_alive, alive)

    def _update(self, ips: Iterable[str]) -> None:
        """Re-decide ownership of IPS only, then bring the responders in line if anything moved."""
        changed = False
        for ip in ips:
            ifaces = self.table.interfaces_for(ip, self._alive)
            if self.owned.get(ip) != ifaces:
                changed = True
                if ifaces is None:
                    del self.owned[ip]
                else:
                    self.owned[ip] = ifaces
        if changed:
            self._apply()

    def _apply(self) -> None:
        diff = self.announcer.apply(self.owned, self.interfaces)
        if diff:
            log.info("announcements changed: +%s -%s", list(diff.added), list(diff.removed))
