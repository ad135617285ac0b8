"""The decisions and announcements of this node, kept Service by Service as the table and the alive set change.

`Table.desired` states every Service's decisions at once; a control-plane pass needs only those of the Services
that changed (their entries, or what they read of the alive set), and gives status, forwarding and steering
only those. `Followed` keeps the last decisions by Service and this node's announcements by IP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable

from ironlb.core.election import elect, score
from ironlb.speaker.state.desired import AnnounceReason, Decision
from ironlb.speaker.state.ranking import Table


class Followed:
    """The decisions of node ME by Service, and the IPs it announces, as of the last `follow`."""

    def __init__(self, me: str) -> None:
        self.me = me
        self.decisions: dict[str, tuple[Decision, ...]] = {}
        self.announced: dict[str, frozenset[str]] = {}  # IP -> interfaces this node answers it on
        # Services with an IP nobody announces, and their status writer: elected among the alive nodes.
        self.unowned: dict[str, str | None] = {}
        self.alive: frozenset[str] = frozenset()
        self.reasons: Counter[AnnounceReason] = Counter()  # every decision's reason, counted

    def touched_by_alive(self, alive: frozenset[str], keeping: Callable[[Collection[str]], set[str]]) -> set[str]:
        """The Services whose decisions or status writer may change when the alive set becomes ALIVE: those
        KEEPING(nodes) names for the nodes that died or came back, and those nobody announces whose writer
        died or is outranked by a node that came back."""
        flipped = alive ^ self.alive
        if not flipped:
            return set()
        born = alive - self.alive
        out = keeping(flipped)
        for key, writer in self.unowned.items():
            if writer is None or writer not in alive or any(score(b, key) < score(writer, key) for b in born):
                out.add(key)
        return out

    def follow(self, table: Table, alive: frozenset[str], keys: Collection[str] | None) -> list[str]:
        """Decide the Services KEYS again (None: every Service) under TABLE and ALIVE; the keys, sorted, with the
        Services that share an IP whose announcement changed (what they forward and report changes with it)."""
        if keys is None:
            keys = set(table.services) | set(self.decisions)
        self.alive = alive
        sharers: set[str] = set()
        for key in keys:
            old = self.decisions.pop(key, ())
            self.reasons.subtract(d.reason for d in old)
            self.unowned.pop(key, None)
            entries = table.services.get(key) or ()
            if entries:
                self.decisions[key] = decided = tuple(e.decision(alive, self.me) for e in entries)
                self.reasons.update(d.reason for d in decided)
                if any(d.node is None for d in decided):
                    self.unowned[key] = elect(key, alive)
            for ip in self._announce(table, alive, {d.ip for d in old} | {e.ip for e in entries}):
                sharers.update(e.service for e in table.by_ip.get(ip) or ())
        return sorted(set(keys) | sharers)

    def _announce(self, table: Table, alive: frozenset[str], ips: Iterable[str]) -> list[str]:
        """Answer IPS as TABLE decides; the IPs whose answer changed."""
        moved = []
        for ip in ips:  # an IP's Services share it: whether I answer is decided over all of its entries
            ifaces = table.interfaces_for(ip, alive) if ip in table.mine else None
            if ifaces != self.announced.get(ip):
                moved.append(ip)
            if ifaces is None:
                self.announced.pop(ip, None)
            else:
                self.announced[ip] = ifaces
        return moved

    def vips_of(self, key: str) -> list[str]:
        """The IPs of Service KEY this node announces, in its IP order."""
        return [d.ip for d in self.decisions.get(key, ()) if d.ip in self.announced]

    def decisions_of(self, keys: Iterable[str]) -> tuple[Decision, ...]:
        """The decisions of the Services KEYS, in the order given."""
        return tuple(d for key in keys for d in self.decisions.get(key, ()))
