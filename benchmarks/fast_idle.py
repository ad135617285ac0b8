"""Idle CPU of fast planes on loopback, no lab: `python -m benchmarks.fast_idle [--nodes N] [--idle S] [--profile OUT]`.

N real fast-plane processes (`python -m ironlb.speaker.fast`), each bound to its own loopback address
(127.0.0.1 .. 127.0.0.N) on one port, driven over their channels as the speaker's control plane drives them:
peers, the join, no interfaces and no Services. After every node counts every node alive, an idle window of S
seconds. `--profile OUT`: the first node runs under cProfile for the idle window only (benchmarks._profiled),
its statistics written to OUT (read them with `python -m pstats OUT`); its CPU figure then includes cProfile's.

What it leaves out, against `benchmarks.swarm` (the benchmark of record, on the lab's namespaces): the bridge
and veth path, the responders' packet sockets and the in-kernel responders' lease (no interface is given).

Figures (last line, JSON): speaker_idle_cpu_pct (mean per plane, % of a core, from each process's scheduler run
time in /proc), speaker_idle_cpu_pct_max, datagrams_per_node_per_s (sent), rounds_late (all planes, the window).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._figures import report
from ironlb.speaker.control.fastproc import FastProcess
from ironlb.speaker.fast.liveness.membership import INTERVAL_S, TIMEOUT_S

KEY = b"fast-idle-benchmark-heartbeat-key-0123456789"
AGREE_S = 30.0
REPORT_WAIT_S = 1.2  # each plane reports its counters every second


def free_port() -> int:
    """A UDP port nobody uses on loopback right now."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::", 0))
        return int(s.getsockname()[1])


def run_ns(pid: int) -> int:
    """Nanoseconds process PID has run on a CPU (all its threads), from /proc/PID/schedstat."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


async def run(args: argparse.Namespace) -> dict[str, object]:
    """Start, join, agree, measure the idle window, close."""
    names = {f"n{i}": f"127.0.0.{i + 1}" for i in range(args.nodes)}
    port = free_port()
    alive: dict[str, frozenset[str]] = {}
    planes: dict[str, FastProcess] = {}

    def hook(name: str) -> Callable[[frozenset[str]], None]:
        return lambda now: alive.__setitem__(name, now)

    for i, (name, address) in enumerate(names.items()):
        plane = FastProcess(name, KEY, port, hook(name), lambda *_: None, interval=args.interval,
                            timeout=args.timeout, topology=args.topology)
        if i == 0 and args.profile:
            plane.launcher = (sys.executable, "-m", "benchmarks._profiled", args.profile, "--")
        planes[name] = plane
        await plane.start(f"::ffff:{address}")
        plane.set_peers(dict(names), {n: {a} for n, a in names.items()})
    await asyncio.gather(*(p.join() for p in planes.values()))
    everyone = frozenset(names)
    deadline = time.monotonic() + AGREE_S
    while any(alive.get(n) != everyone for n in names):
        if time.monotonic() > deadline:
            raise TimeoutError("the planes never all agreed")
        await asyncio.sleep(0.05)
    try:
        return await window(planes, args)
    finally:
        await asyncio.gather(*(p.close() for p in planes.values()), return_exceptions=True)


async def window(planes: dict[str, FastProcess], args: argparse.Namespace) -> dict[str, object]:
    """The idle window's figures."""
    await asyncio.sleep(REPORT_WAIT_S)
    pids = {name: p.process.pid for name, p in planes.items() if p.process is not None}
    first = pids[next(iter(pids))]
    sent = {name: p.stats.counters.sent for name, p in planes.items()}
    late = sum(p.stats.counters.late for p in planes.values())
    if args.profile:
        os.kill(first, signal.SIGUSR1)  # benchmarks._profiled: profiling on
    ran = {name: run_ns(pid) for name, pid in pids.items()}
    opened = time.monotonic()
    await asyncio.sleep(args.idle)
    cpu = {name: (run_ns(pid) - ran[name]) / 1e9 / (time.monotonic() - opened) * 100 for name, pid in pids.items()}
    if args.profile:
        os.kill(first, signal.SIGUSR2)  # off, and the statistics written
    await asyncio.sleep(REPORT_WAIT_S)
    took = time.monotonic() - opened
    rates = [(p.stats.counters.sent - sent[n]) / took for n, p in planes.items()]
    return {"nodes": args.nodes, "idle_s": args.idle, "topology": args.topology,
            "speaker_idle_cpu_pct": round(sum(cpu.values()) / len(cpu), 3),
            "speaker_idle_cpu_pct_max": round(max(cpu.values()), 3),
            "datagrams_per_node_per_s": round(sum(rates) / len(rates), 1),
            "rounds_late": sum(p.stats.counters.late for p in planes.values()) - late}


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="benchmarks.fast_idle")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--idle", type=float, default=20.0, help="seconds of the idle window")
    p.add_argument("--interval", type=float, default=INTERVAL_S)
    p.add_argument("--timeout", type=float, default=TIMEOUT_S)
    p.add_argument("--topology", choices=("mesh", "ring"), default="ring")
    p.add_argument("--profile", default="", help="cProfile the first plane's idle window into this file")
    return p


def main() -> int:
    """Run and print the figures."""
    report(asyncio.run(run(parser().parse_args())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
