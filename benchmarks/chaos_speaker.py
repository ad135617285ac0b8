"""Speaker chaos: kill, revive, partition and restart speakers at random while the client samples ARP.

`python -m benchmarks.chaos_speaker [--failovers N] [--seed S] [--max-seconds T]` on the 3-node lab.
Each failover hits one node that owns at least one VIP with one of: a node kill (links cut, every
process SIGKILLed) and revive; a SIGKILL of its speaker alone and a fresh start; its speaker frozen
(SIGSTOP to both processes, then SIGCONT); its cable pulled at
the bridge (carrier lost) and put back; its heartbeats dropped while it stays on the clients'
segment (a partition the API must settle) and restored; a graceful restart. One node at most is
faulted at a time, and the next fault waits until every speaker hears every peer again and none is
fenced. Meanwhile the client sends an ARP request for every VIP every 50 ms and records who answers.

Figures (last line, JSON):
- `failovers`: faults applied;
- `double_answer_samples`: (sample, VIP) pairs with two or more answers in steady state, i.e.
  outside the transition after each fault (FAULT_SETTLE_S, or PARTITION_SETTLE_S for a heartbeat
  partition, which the isolated node settles by asking the API) and after each heal (until the
  cluster has converged, plus HEAL_SETTLE_S);
- `double_answer_samples_in_transitions`: the same inside those windows (reported, not a target);
- `unanswered_after_1s`: (sample, VIP) pairs unanswered after the VIP had already been unanswered for 1 s;
- `max_gap_s`: the longest time any VIP went unanswered;
- `false_steering_samples`, `false_steering_s`: while a fault leaves the victim's host answering (a killed,
  frozen or restarted speaker, blocked heartbeats), polls of a speaker that counted some node confirmed dead
  (it would steer new connections away from a live node's endpoints), and their total time;
- `samples`, `seconds`, and the fault counts by kind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._lab import lab, report
from e2e.lab import ironlb_procs, netns, procs, workload
from e2e.lab import lab as lab_ctl
from e2e.lab.config import BRIDGE_NS, REPO
from e2e.lab.config import node as lab_node
from e2e.testkit.testing import Kube, pool_manifests, speaker_hears_all, wait_for
from ironlb.core.election import elect

NODES = ["node-1", "node-2", "node-3"]
NAME = "bench-chaos"
VIPS = 8
FAULT_SETTLE_S, PARTITION_SETTLE_S, HEAL_SETTLE_S = 1.0, 5.0, 0.5
SAMPLE_WINDOW_S = 0.03  # each sample collects answers this long after its requests go out
DWELL_S, PARTITION_DWELL_S = 1.5, 5.5
PARTITION_TABLE = "ilb_chaos_partition"
Heal = Callable[[], None]
# Faults after which the victim's host still answers: a speaker that confirms any death then is wrong.
LIVE_HOST_FAULTS = frozenset({"sigkill-speaker", "partition", "freeze", "restart"})
STEERING_POLL_S = 0.25


def _unplug(node: str) -> Heal:
    port = lab_node(int(node[-1])).bridge_port
    netns.ip("link", "set", port, "down", netns=BRIDGE_NS)

    def heal() -> None:
        netns.ip("link", "set", port, "up", netns=BRIDGE_NS)

    return heal


def _partition(node: str) -> Heal:
    ns = lab_node(int(node[-1])).netns
    rules = (f"table inet {PARTITION_TABLE} {{ chain hb_in {{ type filter hook input priority -10; "
             "udp dport 7946 drop; }; chain hb_out { type filter hook output priority -10; udp dport 7946 drop; }; }")
    netns.run_in(ns, ["nft", rules])

    def heal() -> None:
        netns.run_in(ns, ["nft", "delete", "table", "inet", PARTITION_TABLE], check=False)

    return heal


def _sigkill_speaker(node: str) -> Heal:
    procs.stop(f"speaker-{node}", sig=9, timeout=2)

    def heal() -> None:
        ironlb_procs.start_speaker(node)

    return heal


def _freeze(node: str) -> Heal:
    # Both of the speaker's processes stop where they are, as a wedged or throttled pod would: no more heartbeats,
    # and the kernel's ARP answers must stop too (their lease runs out), or the node answers beside its successor.
    procs.signal_all(f"speaker-{node}", signal.SIGSTOP)

    def heal() -> None:
        procs.signal_all(f"speaker-{node}", signal.SIGCONT)

    return heal


def _kill(node: str) -> Heal:
    lab_ctl.kill_node(node)
    return lambda: lab_ctl.revive_node(node)


def _restart(node: str) -> Heal:
    ironlb_procs.restart("speaker", node)
    return lambda: None


FAULTS: dict[str, Callable[[str], Heal]] = {"kill-node": _kill, "sigkill-speaker": _sigkill_speaker,
                                            "unplug": _unplug, "partition": _partition, "restart": _restart,
                                            "freeze": _freeze}


def converged(kube: Kube) -> bool:
    """Every speaker hears every peer, and none is fenced."""
    for n in NODES:
        text = kube.exec(n, "curl", "-s", "-m", "1", "http://127.0.0.1:7473/metrics").stdout
        if f"ironlb_speaker_alive_peers {len(NODES)}.0" not in text or "} 1.0" in _fenced_lines(text):
            return False
    return True


def _fenced_lines(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith("ironlb_speaker_fenced{"))


def setup(kube: Kube) -> list[str]:
    """Pool, advertisement, pods on every node and VIPS Services; return their IPs."""
    kube.apply(*pool_manifests(NAME, ["198.51.100.200/29"]))
    workload.delete(NAME)
    kube.deploy(NAME, replicas=3, nodes=NODES)
    for i in range(VIPS):
        kube.apply({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": f"{NAME}-{i}", "namespace": "default",
                                 "annotations": {"ironlb.io/address-pool": NAME}},
                    "spec": {"type": "LoadBalancer", "selector": {"app": NAME},
                             "ports": [{"port": 80, "targetPort": 8080}]}})
    return [wait_for(lambda i=i: (kube.get("service", f"{NAME}-{i}")["status"].get("loadBalancer", {})
                                  .get("ingress") or [{}])[0].get("ip"), what="VIP") for i in range(VIPS)]


def teardown(kube: Kube) -> None:
    """Remove what setup made."""
    for i in range(VIPS):
        kube.kubectl("delete", "service", f"{NAME}-{i}", "--wait=false", check=False)
    workload.delete(NAME)
    kube.kubectl("delete", "l2advertisement", NAME, "--ignore-not-found", check=False)
    kube.kubectl("delete", "ipaddresspool", NAME, "--ignore-not-found", check=False)


class SteeringWatch:
    """Polls every speaker's count of confirmed-dead nodes in the background: (time, node, count) samples."""

    def __init__(self, kube: Kube) -> None:
        self.kube, self.samples = kube, []  # type: list[tuple[float, str, float]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> None:
        """Poll from now on."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.wait(STEERING_POLL_S):
            for n in NODES:  # a frozen speaker answers nothing: no sample
                text = self.kube.exec(n, "curl", "-s", "-m", "0.3", "http://127.0.0.1:7473/metrics").stdout
                for line in text.splitlines():
                    if line.startswith("ironlb_speaker_confirmed_dead_nodes "):
                        self.samples.append((time.monotonic(), n, float(line.split()[1])))


def false_steering(samples: list[tuple[float, str, float]], spans: list[tuple[str, float, float]]) -> dict[str, Any]:
    """Polls that counted a confirmed death while a fault that leaves the host answering was on (pure)."""
    wrong = sum(1 for t, _, count in samples if count > 0
                and any(kind in LIVE_HOST_FAULTS and start <= t <= end for kind, start, end in spans))
    return {"false_steering_samples": wrong, "false_steering_s": round(wrong * STEERING_POLL_S, 2)}


def figures(samples: list[dict[str, Any]], windows: list[tuple[float, float]], faults: dict[str, int],
            failovers: int, seconds: float) -> dict[str, Any]:
    """The figures from the samples and the transition windows (pure)."""
    def in_transition(t: float) -> bool:
        # A sample spans [t, t + its window]: one sent just before a heal holds answers given after it.
        return any(a <= t + SAMPLE_WINDOW_S and t <= b for a, b in windows)

    double = double_in = unanswered_late = 0
    last_answered: dict[str, float] = {}
    max_gap = 0.0
    for s in samples:
        for ip, macs in s["a"].items():
            last = last_answered.setdefault(ip, s["t"])
            if macs:
                last_answered[ip] = s["t"]
            else:
                max_gap = max(max_gap, s["t"] - last)
                unanswered_late += s["t"] - last > 1.0
            if len(macs) > 1:
                if in_transition(s["t"]):
                    double_in += 1
                else:
                    double += 1
    return {"failovers": failovers, "double_answer_samples": double,
            "double_answer_samples_in_transitions": double_in, "unanswered_after_1s": unanswered_late,
            "max_gap_s": round(max_gap, 3), "samples": len(samples), "seconds": round(seconds, 1),
            **{f"faults_{k.replace('-', '_')}": v for k, v in sorted(faults.items())}}


def run(failovers: int, seed: int = 1, max_seconds: float = 600.0, kinds: tuple[str, ...] = ()) -> dict[str, Any]:
    """Apply FAILOVERS faults of KINDS (default: every kind) or stop at MAX_SECONDS; return the figures."""
    kinds = tuple(sorted(kinds or FAULTS))
    kube = lab()
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=60, what="every speaker in the election")
    vips = setup(kube)
    rng = random.Random(seed)
    stop_file = Path(tempfile.mkdtemp(prefix="ilb-chaos-")) / "stop"
    out = stop_file.with_name("samples.jsonl")
    with out.open("w") as sink:  # the child has its own copy of the descriptor
        sampler = subprocess.Popen(
            ["ip", "netns", "exec", lab_ctl.namespace_of("client"), str(REPO / ".venv/bin/python"), "-m",
             "e2e.probes.arpsampler", *vips, "--seconds", str(max_seconds + 120), "--stop-file", str(stop_file),
             "--window", str(SAMPLE_WINDOW_S)],
            stdout=sink, env={**os.environ, "PYTHONPATH": f"{REPO}/src:{REPO}"})
    windows: list[tuple[float, float]] = []
    spans: list[tuple[str, float, float]] = []  # each fault: kind, from the fault to the end of its heal
    faults: dict[str, int] = {}
    started = time.monotonic()
    done = 0
    watch = SteeringWatch(kube)
    watch.start()
    try:
        wait_for(lambda: out.stat().st_size > 0, what="sampler running")
        time.sleep(1.0)
        while done < failovers and time.monotonic() - started < max_seconds:
            owners = {elect(ip, NODES) for ip in vips}
            victim, kind = rng.choice(sorted(owners)), rng.choice(kinds)
            t_fault = time.monotonic()
            heal = FAULTS[kind](victim)
            partition = kind == "partition"
            windows.append((t_fault, t_fault + (PARTITION_SETTLE_S if partition else FAULT_SETTLE_S)))
            faults[kind] = faults.get(kind, 0) + 1
            done += 1
            time.sleep(PARTITION_DWELL_S if partition else DWELL_S)
            t_heal = time.monotonic()
            heal()
            wait_for(lambda: converged(kube), timeout=60, interval=0.1, what=f"convergence after {kind} of {victim}")
            spans.append((kind, t_fault, time.monotonic()))
            windows.append((t_heal, time.monotonic() + HEAL_SETTLE_S))
            time.sleep(HEAL_SETTLE_S + rng.uniform(0.2, 0.8))
            print(f"failover {done}: {kind} {victim}, converged {time.monotonic() - t_heal:.1f} s after heal",
                  flush=True)
    finally:
        watch.stop()
        stop_file.touch()
        sampler.wait(timeout=10)
        teardown(kube)
    samples = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    shutil.rmtree(stop_file.parent, ignore_errors=True)  # the samples are read: nothing is left in /tmp
    return {**figures(samples, windows, faults, done, time.monotonic() - started),
            **false_steering(watch.samples, spans)}


def main() -> int:
    """Parse options, run, print the figures."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.chaos_speaker")
    p.add_argument("--failovers", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-seconds", type=float, default=600.0, help="stop applying faults after this long")
    p.add_argument("--faults", default="", help=f"comma list of fault kinds to draw from ({', '.join(FAULTS)}; "
                                                 "default: all)")
    args = p.parse_args()
    kinds = tuple(k for k in args.faults.split(",") if k)
    if unknown := set(kinds) - set(FAULTS):
        p.error(f"unknown fault kinds: {', '.join(sorted(unknown))}")
    report(run(args.failovers, args.seed, args.max_seconds, kinds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
