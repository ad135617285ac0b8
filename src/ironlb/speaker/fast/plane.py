"""The fast plane: heartbeats, failure detection, ownership and the ARP/NDP responders, on one loop.

It runs in a process of its own (`fast.child`), so no amount of control-plane work (10,000 Services
relisted, Events written, nftables applied, the collector scanning the cluster view) holds the
interpreter between a heartbeat and its send, or a request and its reply. Ownership is decided here,
from this node's claims (`claims.ClaimTable`) and the alive set: on an alive-set change only the IPs
the changed peers rank before this node are re-decided. The control plane is told afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence

from ironlb.speaker.fast.announcer import Announcer, Diff, Interface, ResponderFactory
from ironlb.speaker.fast.claims import Claims, ClaimTable
from ironlb.speaker.fast.l2 import packets as pk
from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S
from ironlb.speaker.fast.liveness.protocol import KeySet
from ironlb.speaker.fast.liveness.ringmode import Topology
from ironlb.speaker.fast.liveness.transport import Liveness

log = logging.getLogger(__name__)
# IPs re-decided per turn of the fast loop: a relist can change thousands at once, and heartbeats and
# replies must not wait behind all of them (256 decisions: well under a millisecond, before the
# responders are brought in line).
TAKE_BATCH = 256
Owned = dict[str, frozenset[str]]  # IP -> the interfaces this node answers it on
AliveHook = Callable[[frozenset[str]], None]
OwnedHook = Callable[[Mapping[str, frozenset[str] | None], Diff], None]  # IPs that changed; responder changes


class FastPlane:
    """Owns the Liveness, the Announcer and the claims; reports alive-set and ownership changes."""

    def __init__(self, me: str, key: bytes | KeySet, port: int, factory: ResponderFactory,
                 on_alive: AliveHook, on_owned: OwnedHook, interval: float = INTERVAL_S,
                 timeout: float = TIMEOUT_S, topology: Topology = Topology.MESH) -> None:
        self.me, self.on_alive, self.on_owned = me, on_alive, on_owned
        self.liveness = Liveness(me, key, port, self._alive_changed, interval=interval, timeout=timeout,
                                 topology=topology)
        self.announcer = Announcer(factory)
        self.table = ClaimTable(me)
        self.interfaces: dict[str, Interface] = {}
        self.owned: Owned = {}  # what this node answers for now
        self._alive: frozenset[str] = self.liveness.alive
        self._covers: dict[str, bytes] = {}  # every held peer's IPs and MACs, as the membership last said
        self._holds_version = 0  # the membership's, when _covers was read
        self._held: frozenset[str] = frozenset()  # peers held, as the membership last said
        self.table.set_alive(self._alive)
        self._pending: set[str] = set()  # IPs whose claims changed, not re-decided yet
        self._taking = False  # a _take is queued on the loop

    async def start(self, host: str = "::") -> None:
        """Bind the heartbeat socket and start the heartbeat loop (raises if the port cannot be bound)."""
        await self.liveness.start(host)

    def learn(self, start: int, names: Sequence[str]) -> None:
        """The control plane gave NAMES the node bits from START on (claims that use them come after)."""
        self.table.learn(start, names)

    def put(self, changes: Mapping[str, Claims]) -> None:
        """New claims for some IPs: kept at once, re-decided a batch per loop turn."""
        self.table.update(changes)
        self._queue(changes)

    def _queue(self, ips: Iterable[str]) -> None:
        self._pending.update(ips)
        if not self._taking and self._pending:
            self._taking = True
            asyncio.get_running_loop().call_soon(self._take)

    def set_interfaces(self, interfaces: Mapping[str, Interface]) -> None:
        """The usable interfaces changed."""
        self.interfaces = dict(interfaces)
        self._apply({}, whole=True)

    @property
    def alive(self) -> frozenset[str]:
        """Alive nodes as the failure detector last said (this one included once joined)."""
        return self._alive

    async def close(self, hold_s: float = 0.0, excluded: frozenset[str] = frozenset()) -> None:
        """Stop answering, say goodbye to peers, end the heartbeat loop and any burst still under way.

        HOLD_S > 0: the speaker restarts and this node goes on forwarding, so peers are asked to answer for its
        IPs (but EXCLUDED) with its MACs for up to HOLD_S, and it answers on until they do: make before break."""
        liveness = self.liveness
        if hold_s > 0 and liveness.speaking and not liveness.fenced and self.me in self._alive:
            liveness.restart(hold_s, self.handed_over(excluded))
            await asyncio.sleep(liveness.membership.timeout)  # the peers' answers begin before ours end
        bursts = self.announcer.close()
        self.owned = {}
        await self.liveness.close()
        await asyncio.gather(*bursts, return_exceptions=True)

    def handed_over(self, excluded: frozenset[str] = frozenset()) -> dict[str, bytes]:
        """IP -> the MAC it is answered with, for every IP this node answers but EXCLUDED."""
        out = {}
        for ip in self.owned:
            macs = sorted(self.interfaces[n].mac for n in self.announcer.placed(ip) if n in self.interfaces)
            if macs and ip not in excluded:
                out[ip] = pk.mac_bytes(macs[0])
        return out

    def _take(self) -> None:
        batch = [self._pending.pop() for _ in range(min(TAKE_BATCH, len(self._pending)))]
        self._update(batch)
        self._taking = bool(self._pending)
        if self._taking:  # the rest on the next turn, after the timers and sockets that are due
            asyncio.get_running_loop().call_soon(self._take)

    def _alive_changed(self, alive: frozenset[str]) -> None:
        old, self._alive = self._alive, alive
        members = self.liveness.membership
        old_covers, holds_moved = self._covers, members.holds_version != self._holds_version
        if holds_moved:  # the held set and its covers are read again only when they changed
            self._covers, self._holds_version = members.covers(), members.holds_version
            self._held = members.held()
        # The mask of the peers that died, came back, were held or let go
        changed = self.table.set_alive(alive, self._held)
        # Joined or fenced: every IP that ranks us. Peers: the IPs they are ahead on. Either way a batch
        # per loop turn (the next turn, for a few): many Nodes declared dead at once, moved in one turn,
        # held the heartbeats up (docs/design.md, "Measurements behind the code").
        self._queue(self.table.mine if self.me in old ^ alive else self.table.affected_by(changed))
        if holds_moved and (self._covers or old_covers):  # a held peer's IPs arrive a message at a time
            new = self._covers
            self._queue(ip for ip in new.keys() | old_covers.keys() if new.get(ip) != old_covers.get(ip))
        if alive != old:
            self.on_alive(alive)

    def _update(self, ips: Iterable[str]) -> None:
        """Re-decide ownership of IPS only, then bring the responders in line if anything moved."""
        changes: dict[str, frozenset[str] | None] = {}
        covers: dict[str, tuple[frozenset[str], bytes] | None] = {}
        for ip in ips:
            ifaces = self.table.interfaces_for(ip, self._covers)
            if self.owned.get(ip) != ifaces:
                changes[ip] = ifaces
                if ifaces is None:
                    del self.owned[ip]
                else:
                    self.owned[ip] = ifaces
            cover = self.table.cover_for(ip, self._covers) if self._covers else None
            if self.announcer.covers.get(ip) != cover:
                covers[ip] = cover
        if covers:  # before what is owned: an IP a held peer lost is let go here first, then taken
            self.announcer.cover(covers)
            log.info("answering for held peers: +%d -%d IPs", sum(c is not None for c in covers.values()),
                     sum(c is None for c in covers.values()))
        if changes:
            self._apply(changes)

    def _apply(self, changes: Mapping[str, frozenset[str] | None], whole: bool = False) -> None:
        # Only the IPs that changed are handed to the responders: a batch costs what it moved, not
        # what this node owns (thousands of IPs, every batch of a relist).
        diff = self.announcer.apply(self.owned, self.interfaces, None if whole else changes.keys())
        if diff:
            log.info("announcements changed: +%s -%s", _few(diff.added), _few(diff.removed))
        if changes or diff:
            self.on_owned(changes, diff)


def _few(pairs: tuple[tuple[str, str], ...], shown: int = 16) -> str:
    """(ip, interface) pairs for a log line: all of a few, the first of many and how many more."""
    text = ", ".join(f"{ip}@{name}" for ip, name in pairs[:shown])
    return f"[{text}]" if len(pairs) <= shown else f"[{text}, and {len(pairs) - shown} more]"
