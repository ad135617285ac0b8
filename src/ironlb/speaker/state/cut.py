"""Rankings cut to the part that can decide: the head (an IP's first nodes in election order, alive or not) and
a tail of the next alive nodes, so that a few of the kept are alive. Pure.

The owner of an IP is its first alive node. The head keeps the nodes that take the IP back the moment they
return (the fast plane moves it at once: their bits are in this node's claims); the tail keeps the first
alive nodes past the head, so that one death moves the IP at once too, even when the whole head is dead (the
control plane then tops the tail up). A ranking then costs a few nodes, not one per Node in the cluster, and a
Node's change touches only the IPs that keep it. `Cut` holds how many to keep; `refit` brings one entry in line
with nodes that moved and the alive set, in a few scores, where ranking it afresh scores every node.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from hashlib import sha256

from ironlb.core.election import score
from ironlb.speaker.state.desired import AnnounceReason
from ironlb.speaker.state.ranking import Ranked, Ranking


@dataclass(frozen=True)
class Cut:
    """How much of a ranking is kept."""

    head: int = 4  # the first nodes of the order, alive or not
    alive: int = 2  # past the head, alive nodes until this many of the kept are alive
    worn: int = 2  # a head that nodes leaving wore below this is ranked afresh (it cannot grow back alone)

    def order(self, ip: str, nodes: Iterable[str], alive: Collection[str]) -> tuple[list[str], int]:
        """The kept part of IP's election order over NODES (no incumbent: Cluster policy), and how many of
        those are the tail."""
        names = list(nodes)
        scores = _scores(ip, names)
        by_score = sorted(range(len(names)), key=scores.__getitem__)
        head = by_score[:self.head]
        needed = self.alive - sum(1 for i in head if names[i] in alive)
        tail = list(itertools.islice((i for i in by_score[self.head:] if names[i] in alive), max(needed, 0)))
        return [names[i] for i in head + tail], len(tail)

    def refit(self, entry: Ranked, moved: Collection[str], candidates: Mapping[str, frozenset[str]],
              same: bool, alive: Collection[str], born: Collection[str] = (),
              placed: Collection[str] | None = None) -> Ranked | None:
        """ENTRY once the nodes MOVED changed (left the candidates, joined, or answer elsewhere) and the alive
        set became ALIVE (BORN: the nodes that came alive); None when its head wore down and the IP must be
        ranked afresh. ENTRY itself when nothing it keeps changes.

        PLACED: the nodes of MOVED that may come anywhere in the order (new candidates; all of MOVED unless
        told), scored against the head; the others keep their places. A node that joins while dead is not
        placed (it decides nothing while dead): the caller places it when it comes alive. CANDIDATES: node ->
        interfaces for the IP's pool; SAME: all answer alike."""
        if entry.reason is not AnnounceReason.ANNOUNCING:
            return entry
        ranking = list(entry.ranking)
        split = len(ranking) - entry.extended
        head = [n for n in ranking[:split] if n in candidates]
        tail = [n for n in ranking[split:] if n in candidates and n in alive]
        if len(head) < min(self.worn, len(candidates)):
            return None
        kept, ip = set(head) | set(tail), entry.ip
        contenders = []  # alive candidates not kept that may belong in the tail
        for node in [n for n in (moved if placed is None else placed) if n in candidates and n in alive
                     and n not in kept]:
            mark = score(node, ip)  # a new candidate: it may come anywhere, the head first
            if head and mark < score(head[-1], ip):
                _insort(head, node, ip, mark)
                if len(head) > self.head and (dropped := head.pop()) in alive:
                    tail.insert(0, dropped)  # the first alive past the head now
            else:
                contenders.append(node)
            kept.add(node)
        contenders += [n for n in born if n in candidates and n not in kept]  # placed, so past the head
        needed = self._needed(head, alive)
        if len(tail) < needed:  # the first alive candidates past the head, afresh
            past = [n for n in candidates if n in alive and n not in head]
            tail = [past[i] for i in _smallest(needed, range(len(past)), _scores(ip, past))]
        elif needed:
            for node in contenders:
                mark = score(node, ip)
                if mark < score(tail[needed - 1], ip):
                    _insort(tail, node, ip, mark)
        tail = tail[:needed]
        if head + tail == ranking and len(tail) == entry.extended and not any(n in ranking for n in moved):
            return entry  # the same nodes, and none of them answers elsewhere now
        return _entry(entry, head, tail, candidates, same)

    def _needed(self, head: Sequence[str], alive: Collection[str]) -> int:
        """How many alive nodes the tail must keep past HEAD."""
        return max(self.alive - sum(1 for n in head if n in alive), 0)


# Node -> its name and the separator, encoded: a score is then one hash of these bytes and the IP's. One entry
# per Node name ever ranked (as `ranking._NAMES`).
_PREFIXES: dict[str, bytes] = {}


def _scores(ip: str, nodes: Sequence[str]) -> list[bytes]:
    """`election.score` of each of NODES for IP, in one pass (and no object the collector tracks)."""
    address = ip.encode()
    return [sha256((_PREFIXES.get(node) or _prefix(node)) + address).digest() for node in nodes]


def _prefix(node: str) -> bytes:
    prefix = _PREFIXES[node] = f"{node}#".encode()
    return prefix


def _smallest(count: int, indices: Iterable[int], scores: Sequence[bytes]) -> list[int]:
    """The COUNT indices with the smallest SCORES, smallest first."""
    return heapq.nsmallest(count, indices, key=scores.__getitem__)


def _insort(order: list[str], node: str, ip: str, mark: bytes) -> None:
    """Put NODE (whose score for IP is MARK) into ORDER by score."""
    for i, other in enumerate(order):
        if mark < score(other, ip):
            order.insert(i, node)
            return
    order.append(node)


def _entry(entry: Ranked, head: Sequence[str], tail: Sequence[str], interfaces: Mapping[str, frozenset[str]],
           same: bool) -> Ranked:
    kept = [*head, *tail]
    per_node = tuple(interfaces[n] for n in kept[:1 if same else None])
    return replace(entry, ranking=Ranking(kept), interfaces=per_node, extended=len(tail))
