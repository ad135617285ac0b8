"""Ring mode's probes of every peer: a fixed rotation, a few peers a round, each one once a probe cycle (pure).

A ring node heartbeats its neighbours every interval and every other peer once a probe cycle, so that their
messages echo its run (their RESTART, FENCED and LEAVE are checked as a neighbour's) and new speakers find each
other. Sent all at once, those probes are a burst of one datagram per peer; spread over the rounds, they cost
at most PROBE_BUDGET_PER_S datagrams a second whatever the cluster's size, and the cycle grows with it instead.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

# Peers we have not heard from lately get a probe every PROBE_S, not a heartbeat every interval (udpsocket.py:
# an unresolved peer's datagrams fill the send buffer).
PROBE_S = 0.5
# Probes a ring node sends a second, at most: the neighbours' heartbeats and the notices come on top.
PROBE_BUDGET_PER_S = 100.0
# A sum of fractions falls a hair short of the whole it should reach: a probe is sent that much early.
_ROUNDING = 1e-9


def ring_probe_period(grace: float, interval: float) -> float:
    """How often a ring node probes each neighbour, and each other peer in a small cluster: half the GRACE period
    (a peer silent for that long is no longer sent heartbeats every INTERVAL)."""
    return max(PROBE_S, grace / 2, interval)


def probe_cycle(peers: int, period: float) -> float:
    """How long a ring node takes to probe each of PEERS once: the probe PERIOD, or longer once the peers are
    more than the budget allows in that time."""
    return max(period, peers / PROBE_BUDGET_PER_S)


class Rotation:
    """The peers in name order, each round's probes taken from just after the last one probed. A node starts
    after its own name, so nodes that start together do not all probe the same peer at once."""

    def __init__(self, me: str) -> None:
        self.me = me
        self._names: list[str] = []  # in name order; this node's own name may be among them (it is skipped)
        self._last = me  # the peer probed last (a name no longer a peer still marks the place)
        self._owed = 0.0  # probes due but not yet sent: a round sends whole ones, the fraction carries over

    def set_names(self, names: Iterable[str]) -> None:
        """The peers to probe (the Node list); the rotation goes on from where it was."""
        self.share(sorted(set(names)))

    def share(self, ordered: list[str]) -> None:
        """The peers to probe, already in name order: ORDERED is kept as it is, never changed (many rotations
        may hold one list)."""
        self._names = ordered

    def due(self, share: float) -> list[str]:
        """The peers this round probes, for the SHARE of a cycle since the last round: each peer once a cycle,
        spread evenly over it (a share of time, not a count of rounds, so that late rounds do not stretch it)."""
        names = self._names
        mine = bisect_left(names, self.me)
        peers = len(names) - (mine < len(names) and names[mine] == self.me)
        if not peers:
            return []
        self._owed = min(self._owed + peers * min(max(share, 0.0), 1.0), float(peers))
        take = int(self._owed + _ROUNDING)
        self._owed -= take
        picked: list[str] = []
        at = bisect_right(names, self._last)
        while len(picked) < take:
            name = names[at % len(names)]
            if name != self.me:
                picked.append(name)
            at += 1
        if picked:
            self._last = picked[-1]
        return picked
