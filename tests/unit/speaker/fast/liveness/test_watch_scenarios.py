"""Ring failure detection scenario tables: each scenario is a list of steps run in order on one simulated cluster.

The cluster is NODES speakers running the real Membership and Watch code (benchmarks.membership_sim) on a
lossless network with a small delay. Roles name nodes: "x" is the subject, "w0".."w3" its four watchers
(ring order), "z" a node that watches neither x nor its watchers' deaths by heartbeat.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from benchmarks.membership_sim import Sim
from ironlb.speaker.fast.liveness.membership import TIMEOUT_S
from ironlb.speaker.fast.liveness.watch import (
    HOLD_TIMEOUTS,
    LONE_AFTER_TIMEOUTS,
    RECENT_TIMEOUTS,
    Learned,
    Notice,
    Say,
    Verdict,
)

NODES = 24
SUBJECT = "node-00003"


@dataclass(frozen=True)
class Kill:
    """Stop these nodes now."""

    roles: tuple[str, ...]


@dataclass(frozen=True)
class Stall:
    """Stall these nodes' loops now for SECONDS: they send and handle nothing, then read what queued up."""

    roles: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class Run:
    """Let this much simulated time pass."""

    seconds: float


@dataclass(frozen=True)
class Cut:
    """Cut the network both ways between these nodes and those (every other node if none given; Heal ends it)."""

    roles: tuple[str, ...]
    others: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lose:
    """Lose every notice saying SAY on its way to ROLE from a node that is not its neighbour (Heal ends it)."""

    role: str
    say: Say


@dataclass(frozen=True)
class Heal:
    """The network delivers everything again."""


@dataclass(frozen=True)
class Seen:
    """Every live node (or only ROLE) has SUBJECT at VERDICT."""

    subject: str
    verdict: Verdict
    role: str | None = None


@dataclass(frozen=True)
class Replay:
    """A recording of a notice (SAY of the subject at LIFE, sent by SENDER) reaches ROLE: it learns WHAT."""

    role: str
    say: Say
    sender: str
    life: int
    what: Learned


@dataclass(frozen=True)
class FalseDeaths:
    """How many live nodes some node had dead so far."""

    count: int


@dataclass(frozen=True)
class StartLate:
    """This node's speaker starts only AT seconds from now (its watchers have watched it since the start)."""

    role: str
    at: float


@dataclass(frozen=True)
class SameViews:
    """Every live node's view has the same digest (no repair is left to do)."""


Step = Kill | Stall | Run | Cut | Lose | Heal | Seen | Replay | FalseDeaths | StartLate | SameViews
HOLD_S = HOLD_TIMEOUTS * TIMEOUT_S
DETECTED = TIMEOUT_S + HOLD_S + 0.1  # a timeout, the suspicion's hold, a round and a few deliveries
SETTLED = 2 * TIMEOUT_S
# Past the grace period, the lone watchers' decision, and the repair's window of recent entries: the node that
# starts then hears of its own death from a neighbour's whole view, never from the DEAD notice.
LATE_START_S = 2.0 + LONE_AFTER_TIMEOUTS * TIMEOUT_S + RECENT_TIMEOUTS * TIMEOUT_S + 1.0


SCENARIOS: dict[str, list[Step]] = {
    "a silent node: its watchers time it out, agree, and every node has it dead": [
        Run(0.5), Kill(("x",)), Run(DETECTED), Seen("x", Verdict.DEAD), FalseDeaths(0),
    ],
    "a node dies with one of its monitors: the three others are a majority": [
        Run(0.5), Kill(("x", "w0")), Run(DETECTED), Seen("x", Verdict.DEAD), Run(SETTLED), Seen("w0", Verdict.DEAD),
        FalseDeaths(0),
    ],
    "a node dies with three of its monitors: the lone watcher decides alone, later": [
        Run(0.5), Kill(("x", "w0", "w1", "w2")), Run(DETECTED), Seen("x", Verdict.ALIVE, "z"),
        Run(LONE_AFTER_TIMEOUTS * TIMEOUT_S), Seen("x", Verdict.DEAD), FalseDeaths(0),
    ],
    "one watcher that stops hearing a live node does not kill it: the others still hear it": [
        Run(0.5), Cut(("w0",), ("x",)), Run(2 * LONE_AFTER_TIMEOUTS * TIMEOUT_S), Heal(), Run(SETTLED),
        Seen("x", Verdict.ALIVE), FalseDeaths(0),
    ],
    "a node whose loop stalls past the timeout is heard again while its watchers hold the suspicion: no death": [
        Run(0.5), Stall(("x",), TIMEOUT_S + 0.04), Run(1.0), Seen("x", Verdict.ALIVE), FalseDeaths(0),
    ],
    "a node stalled past the timeout and the hold is declared dead, and refutes once its loop runs again": [
        Run(0.5), Stall(("x",), DETECTED + 0.1), Run(DETECTED), Seen("x", Verdict.DEAD, "z"), Run(1.0),
        Seen("x", Verdict.ALIVE), FalseDeaths(1),
    ],
    "a node cut from every node is declared dead, and refutes at the next life once it is heard again": [
        Run(0.5), Cut(("x",)), Run(DETECTED), Seen("x", Verdict.DEAD, "z"), Heal(), Run(1.0),
        Seen("x", Verdict.ALIVE), FalseDeaths(1),
    ],
    "recordings of the DEAD notice a node refuted never kill it again": [
        Run(0.5), Cut(("x",)), Run(DETECTED), Heal(), Run(1.0), Seen("x", Verdict.ALIVE),
        Replay("z", Say.DEAD, "w0", 0, Learned.STALE), Replay("x", Say.DEAD, "w0", 0, Learned.STALE),
        Replay("z", Say.ALIVE, "x", 0, Learned.STALE), Run(SETTLED), Seen("x", Verdict.ALIVE),
    ],
    "a DEAD notice lost on its way is repaired from a neighbour's digest": [
        Run(0.5), Lose("z", Say.DEAD), Kill(("x",)), Run(TIMEOUT_S + HOLD_S + 0.05), Seen("x", Verdict.DEAD, "w1"),
        Seen("x", Verdict.ALIVE, "z"),
        Run(SETTLED), Seen("x", Verdict.DEAD), FalseDeaths(0),
    ],
    "a node that starts long after its watchers' grace period is dead until it speaks, then alive in every view": [
        StartLate("x", LATE_START_S), Run(LATE_START_S - 0.1), Seen("x", Verdict.DEAD, "z"),
        Run(0.1 + 2.0), Seen("x", Verdict.ALIVE), SameViews(), FalseDeaths(0),
    ],
    "a partition: each side has dead what it cannot hear; healed, every node is alive again everywhere": [
        Run(0.5), Cut(("x", "w0", "w1", "z")), Run(1.0), Heal(), Run(2.0),
        *[Seen(role, Verdict.ALIVE) for role in ("x", "w0", "w1", "w2", "w3", "z")],
    ],
}


def roles(sim: Sim) -> dict[str, str]:
    """Role -> node name in SIM's ring."""
    watchers = sorted(sim.ring.neighbours(SUBJECT))
    near = {SUBJECT, *watchers, *(n for w in watchers for n in sim.ring.neighbours(w))}
    return {"x": SUBJECT, **{f"w{i}": w for i, w in enumerate(watchers)},
            "z": next(name for name in sim.ring.order if name not in near)}


def run_step(sim: Sim, who: dict[str, str], step: Step) -> None:
    """Apply one step to SIM and check what it expects."""
    if isinstance(step, Kill):
        for role in step.roles:
            sim.kill(who[role], sim.now)
    elif isinstance(step, Stall):
        for role in step.roles:
            sim.stall(who[role], sim.now, step.seconds)
    elif isinstance(step, Run):
        sim.run(sim.now + step.seconds)
    elif isinstance(step, Cut):
        side = {who[role] for role in step.roles}
        other = {who[role] for role in step.others} or set(sim.nodes) - side
        sim.cut = lambda a, b: (a in side and b in other) or (b in side and a in other)
    elif isinstance(step, Lose):
        target = who[step.role]
        near = sim.ring.neighbours(target)
        sim.drop = lambda a, b, payload: (b == target and a not in near and isinstance(payload, Notice)
                                          and payload.say is step.say)
    elif isinstance(step, Heal):
        sim.cut, sim.drop = (lambda a, b: False), (lambda a, b, payload: False)
    elif isinstance(step, Seen):
        subject = who[step.subject]
        observers = [who[step.role]] if step.role else [n for n in sim.nodes.values() if n.up and n.name != subject]
        for node in observers:
            node = sim.nodes[node] if isinstance(node, str) else node
            assert node.watch.entry(subject).verdict is step.verdict, (node.name, step)
    elif isinstance(step, StartLate):
        sim.start_late(who[step.role], sim.now + step.at)
    elif isinstance(step, SameViews):
        assert len({node.watch.digest for node in sim.nodes.values() if node.up}) == 1
    elif isinstance(step, Replay):
        node = sim.nodes[who[step.role]]
        notice = Notice(step.say, who[step.sender], who["x"], node.watch.entry(who["x"]).incarnation, step.life)
        assert node.watch.on_notice(notice, sim.now)[0] is step.what, step
    else:
        assert len(sim.deaths.false) == step.count, (sim.deaths.false, step)


@pytest.mark.parametrize("name", SCENARIOS)
def test_watch_scenario(name: str) -> None:
    sim = Sim([f"node-{i:05d}" for i in range(NODES)], seed=7)
    who = roles(sim)
    for step in SCENARIOS[name]:
        run_step(sim, who, step)
