"""Failure detection at scale: the real Membership and Watch code of every node, over an in-memory network.

    python -m benchmarks.membership_sim --nodes 5000 [--loss 0.02] [--seconds S] [--seed N]
        [--kill-every S] [--stall-every S --stall-ms MS] [--before]
    python -m benchmarks.membership_sim --hot-path 1000

The second form times one node's hot path instead: an accepted heartbeat and the alive-set check that follows
it (as the transport does it), with a tick each round, among PEERS peers all heard; `hot_path_us` per heartbeat.

Each simulated node runs its own Membership (heartbeats with its ring neighbours) and Watch (suspicion,
agreement, notices, digests), exactly as the speaker's code, on a simulated clock: an event heap of heartbeat
rounds and datagram deliveries. Each round also probes the next few peers of its rotation, as the speaker does
on the ring (probes.py): every peer once a probe cycle, at most PROBE_BUDGET_PER_S a second; a probe echoes its
recipient's run (as the speaker's does once it has heard that run), and a node that is not the sender's
neighbour takes it as a stray heartbeat. Datagrams are lost at random (--loss) and delayed (a base delay and an
exponential jitter). After a warm-up, a node is killed every --kill-every seconds, every other time together
with one of its monitors; kills stop a settle time before the end, so every death has time to be agreed on. The
starved case (--stall-every, --kill-every 0 for it alone): every so often one live node's loop stalls for
--stall-ms: it sends nothing and handles nothing meanwhile, then reads what queued up before its next round (as
the transport does). --before runs the rules as they were before the bounded repair and the suspicion's hold (no
hold; every SYNC answered with the whole view, asks not backed off), to compare.

Figures (the last line, JSON): datagrams_per_node_per_s (sent by a live node: heartbeats, probes and notices),
probes_per_node_per_s (of those, the probes),
detection_p99_s (a death to the first node that declares it), agreement_p99_s (a death to the moment every
live node has it dead; a death some live node never learned counts as the whole run), the same two over the
nodes killed with a monitor (paired_: the victim and the monitor both), false_deaths (live nodes
that any node had dead), repair_datagrams_per_node_per_s (verdicts sent to one node: SYNC answers, replies to a
node the view has down), notices_per_node_per_s (every notice), and nodes, loss, seconds, deaths, stalls.

Left out: HMAC signing and checking (the protocol's cost per datagram, not the design's), the socket and the
event loop (a node's round is instant; a stall is the only CPU effect, and stalls do not breed more: a node's
load does not slow it), restarts and joins (killed nodes stay down), and format probes (every node speaks
version 3).
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S, Membership
from ironlb.speaker.fast.liveness.probes import Rotation, probe_cycle, ring_probe_period
from ironlb.speaker.fast.liveness.protocol import Decoded, Heartbeat, Kind, Say
from ironlb.speaker.fast.liveness.ring import Ring
from ironlb.speaker.fast.liveness.watch import HOLD_TIMEOUTS, Notice, Repair, Send, Verdict, Watch

WARMUP_S = 1.0
SETTLE_S = 1.5
BASE_DELAY_S = 0.0002
JITTER_S = 0.0005
_TICK, _BEAT, _NOTICE, _KILL, _STALL, _START = range(6)
_VERDICTS = (Say.DEAD, Say.LEFT, Say.ALIVE)


@dataclass
class SimNode:
    """One simulated speaker: its heartbeat table, its watch, its run."""

    name: str
    incarnation: int
    membership: Membership
    watch: Watch
    rotation: Rotation
    up: bool = True
    sequence: int = 0
    sent: int = 0
    probes: int = 0  # of SENT: heartbeats to peers not in its table (the rotation's)
    notices: int = 0  # of SENT: notices
    repairs: int = 0  # of NOTICES: verdicts sent to one node (SYNC answers, a reply to a node the view has down)
    stalled_until: float = 0.0  # its loop does nothing until then


@dataclass
class Deaths:
    """When each node died, and when each live node had it dead."""

    killed: dict[str, float] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)  # subject -> first time any node had it dead
    seen: dict[str, dict[str, float]] = field(default_factory=dict)  # subject -> observer -> when it had it dead
    false: set[str] = field(default_factory=set)  # live subjects some node had dead
    paired: set[str] = field(default_factory=set)  # nodes killed together with one of their monitors (both)


class Sim:
    """Every node's real code on one simulated clock and a lossy, delaying network."""

    def __init__(self, names: list[str], loss: float = 0.0, seed: int = 0, interval: float = INTERVAL_S,
                 timeout: float = TIMEOUT_S, before: bool = False) -> None:
        self.rng = random.Random(seed)
        self.before = before  # the rules before the bounded repair and the suspicion's hold
        self.stalls = 0
        self.loss, self.interval, self.now = loss, interval, 0.0
        self.ring = Ring(names)
        self.events: list[tuple[float, int, int, str, object]] = []
        self.order = count()
        self.deaths = Deaths()
        self.cut: Callable[[str, str], bool] = lambda a, b: False  # a partition: is the way from a to b cut?
        self.drop: Callable[[str, str, object], bool] = lambda a, b, payload: False  # lose this one datagram?
        self.timeout = timeout
        self.rounds_per_cycle = probe_cycle(len(names) - 1, ring_probe_period(Membership.grace, interval)) / interval
        self.names = sorted(names)  # every node's rotation, in name order (one list for all)
        self.nodes = {name: self._node(name, 0.0) for name in names}
        for node in self.nodes.values():
            node.watch.start(0.0)
            self._at(self.rng.uniform(0, interval), _TICK, node.name, None)

    def _node(self, name: str, started: float) -> SimNode:
        incarnation = self.rng.getrandbits(63) or 1
        timeout = self.timeout
        membership = Membership(me=name, started=started, timeout=timeout, incarnation=incarnation)
        watch = Watch(name, incarnation, self.ring, membership, timeout,
                      hold_timeouts=0.0 if self.before else HOLD_TIMEOUTS,
                      repair=Repair.WHOLE if self.before else Repair.RECENT)
        watch.on_verdict = lambda subject, verdict, now: self._verdict(name, subject, verdict, now)
        rotation = Rotation(name)
        rotation.share(self.names)
        return SimNode(name, incarnation, membership, watch, rotation)

    def _at(self, when: float, kind: int, name: str, payload: object) -> None:
        heapq.heappush(self.events, (when, next(self.order), kind, name, payload))

    def kill(self, name: str, when: float) -> None:
        """Stop NAME at WHEN: it sends and hears nothing from then on."""
        self._at(when, _KILL, name, None)

    def start_late(self, name: str, when: float) -> None:
        """NAME's speaker starts only at WHEN (a new run, its view empty): until then it sends and hears nothing,
        as a node whose process starts after its neighbours' in a staggered start."""
        self.nodes[name].up = False
        self._at(when, _START, name, None)

    def stall(self, name: str, when: float, seconds: float) -> None:
        """Stall NAME's loop at WHEN for SECONDS: it sends and handles nothing meanwhile, then reads what queued."""
        self._at(when, _STALL, name, seconds)

    def run(self, until: float) -> None:
        """Run every event up to UNTIL."""
        while self.events and self.events[0][0] <= until:
            self.now, _, kind, name, payload = heapq.heappop(self.events)
            node = self.nodes[name]
            if kind == _START:
                self._start(name)
                continue
            if not node.up:
                continue
            if kind != _KILL and node.stalled_until > self.now:
                if kind != _TICK:  # queued until the loop runs again; its rounds start afresh then
                    self._at(node.stalled_until, kind, name, payload)
                continue
            if kind == _STALL:
                node.stalled_until = self.now + payload  # type: ignore[operator]
                self.stalls += 1
                # Its next round comes after every datagram queued meanwhile (each re-queued at the wake-up).
                self._at(node.stalled_until + 1e-6, _TICK, name, None)
            elif kind == _TICK:
                self._round(node)
            elif kind == _BEAT:
                self._beat(node, *payload)  # type: ignore[misc]
            elif kind == _NOTICE:
                self._notice(node, payload)  # type: ignore[arg-type]
            else:
                node.up = False
                self.deaths.killed[name] = self.now
        self.now = until

    def _start(self, name: str) -> None:
        node = self.nodes[name] = self._node(name, self.now)
        node.watch.start(self.now)
        self._at(self.now, _TICK, name, None)

    def _round(self, node: SimNode) -> None:
        for peer in node.membership.peers:
            node.sequence += 1
            beat = Heartbeat(Kind.ALIVE, node.name, node.incarnation, node.sequence,
                             node.membership.echo_for(peer))
            self._send(node, peer, _BEAT, (beat, node.watch.digest))
        self._probe(node)
        self._route(node, node.watch.tick(self.now))
        self._at(self.now + self.interval, _TICK, node.name, None)

    def _probe(self, node: SimNode) -> None:
        """The rotation's probes this round (a neighbour's heartbeat went out already)."""
        for peer in node.rotation.due(1 / self.rounds_per_cycle):
            if peer in node.membership.peers:
                continue
            node.sequence += 1
            node.probes += 1
            beat = Heartbeat(Kind.ALIVE, node.name, node.incarnation, node.sequence, self.nodes[peer].incarnation)
            self._send(node, peer, _BEAT, (beat, node.watch.digest))

    def _beat(self, node: SimNode, beat: Heartbeat, digest: int) -> None:
        verdict, change = node.membership.on_message(beat, self.now)
        if verdict is Decoded.ACCEPTED:
            self._route(node, node.watch.heard(beat.node, change, self.now))
            self._route(node, node.watch.on_digest(beat.node, digest, self.now))
        elif verdict is Decoded.UNKNOWN_PEER:
            self._route(node, node.watch.stray(beat.node, self.now))

    def _notice(self, node: SimNode, notice: Notice) -> None:
        self._route(node, node.watch.on_notice(notice, self.now)[1])

    def _route(self, node: SimNode, sends: list[Send]) -> None:
        for send in sends:
            node.notices += 1 if send.to is not None else len(self.ring.order) - 1
            if send.to is not None and send.notice.say in _VERDICTS:
                node.repairs += 1
            if send.to is not None:
                self._send(node, send.to, _NOTICE, send.notice)
                continue
            for name in self.ring.order:
                if name != node.name:
                    self._send(node, name, _NOTICE, send.notice)

    def _send(self, node: SimNode, to: str, kind: int, payload: object) -> None:
        node.sent += 1
        if self.rng.random() < self.loss or self.cut(node.name, to) or self.drop(node.name, to, payload):
            return
        delay = BASE_DELAY_S + self.rng.expovariate(1 / JITTER_S)
        self._at(self.now + delay, kind, to, payload)

    def _verdict(self, observer: str, subject: str, verdict: Verdict, now: float) -> None:
        if verdict is Verdict.ALIVE:
            self.deaths.seen.get(subject, {}).pop(observer, None)
            return
        if self.nodes[subject].up:
            self.deaths.false.add(subject)
        self.deaths.first.setdefault(subject, now)
        self.deaths.seen.setdefault(subject, {})[observer] = now

    def agreed_at(self, subject: str) -> float | None:
        """When every live node had SUBJECT dead (None: some live node does not yet)."""
        seen = self.deaths.seen.get(subject, {})
        times = []
        for node in self.nodes.values():
            if node.up and node.name != subject:
                if node.name not in seen:
                    return None
                times.append(seen[node.name])
        return max(times, default=None)


def percentile(values: list[float], q: float) -> float:
    """The Q-th percentile (nearest rank) of VALUES; 0 for none."""
    if not values:
        return 0.0
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(q / 100 * len(ranked) + 0.5) - 1))]


def simulate(nodes: int, loss: float, seconds: float, seed: int, kill_every: float, stall_every: float = 0.0,
             stall_s: float = 0.2, before: bool = False, start_over: float = 0.0) -> dict[str, float]:
    """Run the simulation; the figures."""
    sim = Sim([f"node-{i:05d}" for i in range(nodes)], loss=loss, seed=seed, before=before)
    for name in sorted(sim.nodes) if start_over > 0 else []:
        sim.start_late(name, sim.rng.uniform(0.0, start_over))
    events = _deaths(sim, seconds, kill_every, start_over) + _stalls(sim, seconds, stall_every, stall_s)
    for at, act in sorted(events, key=lambda event: event[0]):
        sim.run(at)
        act()
    sim.run(seconds)
    up_seconds = sum(sim.deaths.killed.get(name, seconds) for name in sim.nodes)
    killed = sim.deaths.killed
    detection = {name: sim.deaths.first.get(name, seconds) - at for name, at in killed.items()}
    agreement = {name: (sim.agreed_at(name) or seconds) - at for name, at in killed.items()}
    paired = sim.deaths.paired
    return {
        "nodes": nodes, "loss": loss, "seconds": seconds, "deaths": len(killed), "stalls": sim.stalls,
        "before": before,
        "datagrams_per_node_per_s": round(sum(n.sent for n in sim.nodes.values()) / up_seconds, 1),
        "probes_per_node_per_s": round(sum(n.probes for n in sim.nodes.values()) / up_seconds, 1),
        "detection_p99_s": round(percentile(list(detection.values()), 99), 3),
        "agreement_p99_s": round(percentile(list(agreement.values()), 99), 3),
        "paired_deaths": len(paired),
        "paired_detection_p99_s": round(percentile([detection[name] for name in paired], 99), 3),
        "paired_agreement_p99_s": round(percentile([agreement[name] for name in paired], 99), 3),
        "false_deaths": len(sim.deaths.false),
        "notices_per_node_per_s": round(sum(n.notices for n in sim.nodes.values()) / up_seconds, 1),
        "repair_datagrams_per_node_per_s": round(sum(n.repairs for n in sim.nodes.values()) / up_seconds, 2),
        "start_over_s": start_over, "views_apart": views_apart(sim),
    }


def views_apart(sim: Sim) -> int:
    """Live nodes whose view's digest is not the most common one at the end (0: every view is the same)."""
    digests = Counter(node.watch.digest for node in sim.nodes.values() if node.up)
    return sum(digests.values()) - max(digests.values(), default=0)


Event = tuple[float, Callable[[], None]]


def _deaths(sim: Sim, seconds: float, kill_every: float, start_over: float = 0.0) -> list[Event]:
    """A kill every KILL_EVERY after the warm-up (once every node has started), every other one with one of the
    victim's monitors."""
    if kill_every <= 0:
        return []
    victims = sim.rng.sample(sorted(sim.nodes), k=len(sim.nodes))
    events: list[Event] = []
    at, paired = WARMUP_S + start_over, False
    while at < seconds - SETTLE_S and victims:
        victim = victims.pop()
        events.append((at, lambda victim=victim, at=at, paired=paired: _kill(sim, victim, at, paired)))
        paired = not paired
        at += kill_every
    return events


def _kill(sim: Sim, victim: str, at: float, paired: bool) -> None:
    sim.kill(victim, at)
    if paired:  # with one of its monitors
        monitors = sorted(sim.nodes[victim].watch.neighbours() - sim.deaths.killed.keys())
        if monitors:
            monitor = sim.rng.choice(monitors)
            sim.kill(monitor, at)
            sim.deaths.paired |= {victim, monitor}


def _stalls(sim: Sim, seconds: float, stall_every: float, stall_s: float) -> list[Event]:
    """A stall of STALL_S of one node's loop every STALL_EVERY after the warm-up (a node that is up then)."""
    if stall_every <= 0:
        return []
    events: list[Event] = []
    at = WARMUP_S + stall_every / 2
    while at < seconds - SETTLE_S:
        events.append((at, lambda at=at: sim.stall(
            sim.rng.choice([n for n, node in sim.nodes.items() if node.up]), at, stall_s)))
        at += stall_every
    return events


def hot_path(peers: int, rounds: int = 40) -> dict[str, float]:
    """Microseconds per accepted heartbeat, with the version check `Liveness._publish` makes after each one."""
    names = [f"node-{i:05d}" for i in range(1, peers + 1)]
    table = Membership(me="node-00000", started=0.0, incarnation=7)
    table.set_expected({"node-00000", *names})
    beats = [[Heartbeat(Kind.ALIVE, name, 100, r, 7) for name in names] for r in range(1, rounds + 2)]
    for beat in beats[0]:
        table.on_message(beat, 0.0)
    started = time.perf_counter()
    for r, round_beats in enumerate(beats[1:], start=1):
        now = r * INTERVAL_S
        for beat in round_beats:
            table.on_message(beat, now)
            table.alive_version()
        table.tick(now)
    elapsed = time.perf_counter() - started
    return {"peers": peers, "hot_path_us": round(elapsed / (rounds * peers) * 1e6, 2)}


def main(argv: list[str] | None = None) -> int:
    """Run it from the command line; the figures as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--loss", type=float, default=0.02)
    parser.add_argument("--seconds", type=float, default=8.0, help="simulated seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-every", type=float, default=0.25, help="simulated seconds between deaths (0: none)")
    parser.add_argument("--stall-every", type=float, default=0.0,
                        help="simulated seconds between stalls of one node's loop (0: none)")
    parser.add_argument("--stall-ms", type=float, default=200.0, help="how long each stall lasts")
    parser.add_argument("--start-over", type=float, default=0.0,
                        help="each node's speaker starts at a random time within this many seconds (0: all at once)")
    parser.add_argument("--before", action="store_true",
                        help="the rules before the bounded repair and the suspicion's hold")
    parser.add_argument("--hot-path", type=int, metavar="PEERS", help="time one node's hot path instead")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.hot_path:
        figures = hot_path(args.hot_path)
    else:
        figures = simulate(args.nodes, args.loss, args.seconds, args.seed, args.kill_every, args.stall_every,
                           args.stall_ms / 1000, args.before, args.start_over)
    figures["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
