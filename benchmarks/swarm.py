"""Swarm: N live fast planes, one per node namespace on one bridge, with real heartbeats between all of them.

`python -m benchmarks.swarm --nodes N [--idle S] [--loss-window S] [--loss PCT] [--kills K] [--seed SEED]`

Each node is the real fast-plane process (`python -m ironlb.speaker.fast`) in its own namespace on the swarm's
segment (e2e.lab.swarm), given its peers, its interface and the join as the speaker's control plane gives them,
with no Services. This process drives them all over their channels and reads what they report.

Phases, in order: every node joins and all agree on who is alive; an idle window (what each node sends and the
CPU its process uses, and any peer dropped from any alive set: a false failover); the same window again with
PCT % of the frames the bridge forwards dropped (nftables: this kernel has no netem); then K node kills, each as
`benchmarks.failover` kills a node (its cable cut, then its process SIGKILLed; timed from when its bridge port
went down), each followed by its revival (a new process) before the next.

Figures (last line, JSON):
- datagrams_per_node_per_s: heartbeat datagrams sent (the process's own count), mean per node, idle window;
- speaker_idle_cpu_pct: CPU of each fast-plane process over the idle window (/proc), mean per node (and max);
  cpu_cores_used: all of them together, against the machine's cores;
- failover_p95_s: per kill, the seconds until each survivor dropped the dead node from its alive set; each
  survivor is a sample (under rendezvous ranking any of them may be the one that takes an IP over);
  agreement_p95_s: per kill, until the last survivor did; failover_undetected: survivors that never did;
- false_failovers / false_failovers_lossNpct: peers dropped from an alive set while nothing was killed;
- api_writes_per_min_idle: null (no API server runs here; see api_writes_note);
- machine_busy_cores: the whole machine's busy CPU over the idle window (the planes, this process, anything
  else that ran), harness_cpu_pct: this process's own share;
- stopped: why the run stopped early (the nodes never all agreed after the join: no later phase runs; a
  killed node's new process did not start: no further kill).
What it leaves out: the control plane (no API server, no Services), the client's ARP and TCP retry that
`benchmarks.failover` also times, and a real LAN's delay; all nodes share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import random
import resource
import signal
import sys
import time
from pathlib import Path

from benchmarks._figures import percentile, report
from benchmarks._swarm_plane import CLOCK_TICKS, NodePlane, Sample, Verdicts
from e2e.lab import swarm as segment
from e2e.lab.swarm import SwarmNode
from ironlb.speaker.fast.announcer import Interface
from ironlb.speaker.fast.l2 import packets as pk
from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S

PORT = 7946
KEY = b"swarm-benchmark-heartbeat-key-0123456789abcdef"
STARTING_AT_ONCE = 4  # processes starting together (each start is a burst of imports on a shared core)
AGREE_S = 60.0  # the longest wait for every node to agree on who is alive (after the joins, after the loss)
REVIVED_S = 20.0  # the longest wait for every node to count a revived one (before the next kill)
DETECT_S = 5.0  # the longest wait for the survivors to drop a killed node
REPORT_WAIT_S = 1.2  # long enough for every node's next counters (each reports them every second)
MB_PER_NODE = 80  # memory set aside per fast plane before starting (a check, not a figure)
API_WRITES_NOTE = ("no API server runs in the swarm: fast planes only; the cluster's idle writes are measured on the "
                   "lab by benchmarks._apiwrites")


class Swarm:
    """The running nodes, and what each decided."""

    def __init__(self, members: list[SwarmNode], interval: float, timeout: float, topology: str = "mesh") -> None:
        self.members = members
        self.interval, self.timeout, self.topology = interval, timeout, topology
        self.verdicts = Verdicts()
        self.planes: dict[str, NodePlane] = {}
        self.peers = {n.name: n.ipv4 for n in members}
        self.addresses = {n.name: {n.ipv4} for n in members}

    async def start_all(self) -> None:
        """Start every node's process, then join them all."""
        gate = asyncio.Semaphore(STARTING_AT_ONCE)

        async def one(node: SwarmNode) -> None:
            async with gate:
                await self.start(node)

        await asyncio.gather(*(one(n) for n in self.members))
        await asyncio.gather(*(p.join() for p in self.planes.values()))

    async def start(self, node: SwarmNode) -> NodePlane:
        """NODE's fast plane, started, with its peers and its interface (not joined yet)."""
        plane = NodePlane(node, KEY, PORT, self.verdicts, self.interval, self.timeout, self.topology)
        self.planes[node.name] = plane
        await plane.start()
        index, mac = segment.interface(node)
        plane.set_interfaces({"eth0": Interface("eth0", index, mac)}, frozenset({pk.mac_bytes(mac)}))
        plane.set_peers(self.peers, self.addresses)
        return plane

    def live(self) -> set[str]:
        """The nodes whose process runs."""
        return set(self.planes)

    async def agree(self, limit: float = AGREE_S) -> float | None:
        """Seconds until every live node counts exactly the live nodes alive; None if not within LIMIT."""
        started = time.monotonic()
        while time.monotonic() - started < limit:
            if self.verdicts.agreed(self.live()):
                return time.monotonic() - started
            await asyncio.sleep(0.05)
        return None

    async def samples(self) -> dict[str, Sample]:
        """Every node's counters, fresh (after their next report), with its CPU time read now."""
        await asyncio.sleep(REPORT_WAIT_S)
        return {name: plane.sample() for name, plane in self.planes.items()}

    async def close(self) -> None:
        """Every process told to leave, and killed if it does not."""
        await asyncio.gather(*(p.close() for p in self.planes.values()), return_exceptions=True)
        for plane in self.planes.values():
            plane.kill()


def rates(before: dict[str, Sample], after: dict[str, Sample], window: float) -> dict[str, float]:
    """Per-node means over the window between two sets of samples."""
    names = [n for n in before if n in after and after[n].at > before[n].at]
    if not names:
        return {}

    def mean_rate(field: str) -> float:
        return sum((getattr(after[n], field) - getattr(before[n], field)) / (after[n].at - before[n].at)
                   for n in names) / len(names)

    cpu = [(after[n].cpu_s - before[n].cpu_s) / window * 100 for n in names]
    return {"datagrams_per_node_per_s": round(mean_rate("sent"), 1),
            "received_per_node_per_s": round(mean_rate("received"), 1),
            "speaker_idle_cpu_pct": round(sum(cpu) / len(cpu), 3), "speaker_idle_cpu_pct_max": round(max(cpu), 3),
            "cpu_cores_used": round(sum(cpu) / 100, 2),
            "heartbeat_late_rounds": sum(after[n].late - before[n].late for n in names),
            "heartbeat_unsent": sum(after[n].unsent - before[n].unsent for n in names),
            "fast_rss_mb_mean": round(sum(after[n].rss_mb for n in names) / len(names), 1)}


def busy_s() -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, CPU seconds this process has used): what else ran."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    own = resource.getrusage(resource.RUSAGE_SELF)
    return (sum(ticks[:8]) - idle) / CLOCK_TICKS, own.ru_utime + own.ru_stime


async def quiet_window(sw: Swarm, seconds: float) -> tuple[dict[str, float], int, int]:
    """A window with nothing killed: per-node rates (and what the machine and this process used besides),
    peers dropped from alive sets, distinct peers dropped."""
    before = await sw.samples()
    machine, harness = busy_s()
    opened = time.monotonic()
    await asyncio.sleep(seconds)
    closed = time.monotonic()
    machine_after, harness_after = busy_s()
    after = await sw.samples()
    downs = sw.verdicts.downs_between(opened, closed)
    figures = {**rates(before, after, closed - opened),
               "machine_busy_cores": round((machine_after - machine) / (closed - opened), 2),
               "harness_cpu_pct": round((harness_after - harness) / (closed - opened) * 100, 2)}
    return figures, len(downs), len({peer for _, _, peer in downs})


async def kill_and_revive(sw: Swarm, victim: SwarmNode) -> list[float]:
    """Kill VICTIM as benchmarks.failover does; each survivor's seconds until it dropped it (inf: never)."""
    watchers = {n for n in sw.live() - {victim.name} if victim.name in sw.verdicts.alive.get(n, frozenset())}
    cut_at = segment.cut(victim)
    sw.planes.pop(victim.name).kill()
    sw.verdicts.forget(victim.name)
    deadline = cut_at + DETECT_S
    while time.monotonic() < deadline:
        if all(victim.name not in sw.verdicts.alive.get(n, frozenset()) for n in watchers):
            break
        await asyncio.sleep(0.01)
    first: dict[str, float] = {}
    for at, observer, peer in sw.verdicts.downs_between(cut_at, math.inf):
        if peer == victim.name and observer in watchers:
            first.setdefault(observer, at - cut_at)
    segment.reconnect(victim)
    plane = await sw.start(victim)
    await plane.join()
    await sw.agree(REVIVED_S)
    return [first.get(n, math.inf) for n in sorted(watchers)]


def figure(values: list[float], q: float) -> float | None:
    """The q-th percentile, rounded; None when there is none or it is infinite (a kill never detected)."""
    if not values:
        return None
    value = percentile(values, q)
    return None if math.isinf(value) else round(value, 3)


async def run(args: argparse.Namespace) -> dict[str, object]:
    """Every phase on a fresh segment, torn down afterwards whatever happens; the figures."""
    members = segment.nodes(args.nodes)
    sw = Swarm(members, args.interval, args.timeout, args.topology)
    figures: dict[str, object] = {"nodes": args.nodes, "idle_s": args.idle, "loss_window_s": args.loss_window,
                                  "loss_pct": args.loss, "kills": args.kills,
                                  "heartbeat": f"{args.interval}:{args.timeout}", "topology": args.topology,
                                  "api_writes_per_min_idle": None, "api_writes_note": API_WRITES_NOTE,
                                  "loss_method": "nftables numgen on the bridge's forward hook (no netem here)"}
    try:
        segment.create(members)
        started = time.monotonic()
        await sw.start_all()
        agreed = await sw.agree()
        figures["start_s"] = round(time.monotonic() - started, 1)
        figures["agreed_after_join_s"] = None if agreed is None else round(agreed, 2)
        if agreed is None:  # every later phase would wait out its limits on a swarm that never formed
            figures["stopped"] = "the nodes never all agreed on who is alive after the join"
            return figures
        idle, false, false_peers = await quiet_window(sw, args.idle)
        figures.update(idle, false_failovers=false, false_failovers_peers=false_peers)
        if args.loss_window:
            segment.set_loss(args.loss)
            lossy_figures, lossy, lossy_peers = await quiet_window(sw, args.loss_window)
            figures["loss_machine_busy_cores"] = lossy_figures["machine_busy_cores"]
            figures["loss_frames_dropped"] = segment.dropped()
            segment.set_loss(0)
            figures[f"false_failovers_loss{args.loss}pct"] = lossy
            figures[f"false_failovers_loss{args.loss}pct_peers"] = lossy_peers
            await sw.agree()
        rng = random.Random(args.seed)
        detections: list[float] = []
        agreements: list[float] = []
        for _ in range(args.kills):
            try:
                times = await kill_and_revive(sw, rng.choice(members))
            except (TimeoutError, OSError) as exc:  # a revived node's process did not start: report what was measured
                figures["stopped"] = f"a killed node could not be revived ({type(exc).__name__}): fewer kills"
                break
            detections += times
            agreements.append(max(times, default=math.inf))
        figures.update(failover_p50_s=figure(detections, 50), failover_p95_s=figure(detections, 95),
                       failover_max_s=figure(detections, 100), agreement_p95_s=figure(agreements, 95),
                       failover_samples=len(detections),
                       failover_undetected=sum(math.isinf(t) for t in detections))
    finally:
        await sw.close()
        segment.destroy()
    return figures


def budget(args: argparse.Namespace) -> float:
    """The longest the whole run may take: its phases, with room for starting and agreeing."""
    return 120 + 3 * args.nodes + args.idle + args.loss_window + args.kills * (DETECT_S + REVIVED_S + 5) + 2 * AGREE_S


def enough_memory(nodes: int) -> bool:
    """Whether the machine has memory to spare for NODES fast planes."""
    with open("/proc/meminfo") as f:
        available_kb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    return nodes * MB_PER_NODE * 1024 < available_kb * 0.8


async def bounded(args: argparse.Namespace) -> dict[str, object]:
    """run(), cancelled (and so torn down) past its budget or on SIGTERM."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await asyncio.wait_for(run(args), budget(args))


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="benchmarks.swarm")
    p.add_argument("--nodes", type=int, default=20)
    p.add_argument("--idle", type=float, default=300, help="seconds of the idle window")
    p.add_argument("--loss-window", type=float, default=300, help="seconds of the lossy window (0: none)")
    p.add_argument("--loss", type=int, default=2, help="percent of frames dropped in the lossy window")
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=25, help="which nodes are killed")
    p.add_argument("--interval", type=float, default=INTERVAL_S, help="heartbeat interval, seconds")
    p.add_argument("--timeout", type=float, default=TIMEOUT_S, help="heartbeat timeout, seconds")
    p.add_argument("--topology", choices=("mesh", "ring"), default="ring",
                   help="heartbeat topology, as the speaker's --heartbeat-topology")
    p.add_argument("--log", type=Path, default=None,
                   help="write every plane's warnings (deaths and why, late rounds) to this file, each line with the "
                        "time since the start and the node's name; the planes then send warnings, which costs CPU")
    return p


def main() -> int:
    """Run the swarm and print the figures."""
    args = parser().parse_args()
    if not enough_memory(args.nodes):
        print(f"not enough memory for {args.nodes} fast planes", file=sys.stderr)
        return 1
    if args.log is None:
        logging.basicConfig(level=logging.ERROR)  # the planes send only errors: their warnings would cost the run
    else:
        handler = logging.FileHandler(args.log, mode="w")
        handler.setFormatter(logging.Formatter("%(relativeCreated)d %(node)s %(name)s %(message)s",
                                               defaults={"node": "-"}))
        logging.basicConfig(level=logging.WARNING, handlers=[handler])
    with contextlib.suppress(KeyboardInterrupt):
        report(asyncio.run(bounded(args)))
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
