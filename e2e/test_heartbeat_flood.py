"""The heartbeat port under attack: a flood from the LAN and from a node's host network, and echo poisoning.

- A flood of junk, bad-MAC and wrong-source (validly signed) heartbeats from the client and from a node's
  namespace (a host-network pod), as fast as one process each can send, for FLOOD_S seconds: no peer is
  declared dead, no IP moves, the client never hears two answers, and the speakers read (almost) none
  of it: the kernel's socket filter drops every datagram not from a peer's speaker.
- A process on a node's host network cannot bind the heartbeat port (and so cannot send from it).
- Recordings of a peer's previous run, replayed right after each of its real heartbeats to a speaker
  that restarts: the speaker still proves the peer within a second.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from e2e.lab import ironlb_procs, lab
from e2e.lab.config import LOG_DIR
from e2e.lab.config import node as lab_node
from e2e.test_hostile_lan import (
    LAB_PY,
    fast_plane_pid,
    heartbeat_counts,
    log_lines,
    log_size,
    metrics,
    speaker_pid,
    total,
)
from e2e.test_loadbalancer import announcer, service, vip_of
from e2e.testkit.testing import Kube, announced_pool, served_everywhere, speaker_hears_all, wait_for

pytestmark = pytest.mark.lab
POOL = "e2e-heartbeat-flood"
NODES = ("node-1", "node-2", "node-3")
# The figure is 30 s; IRONLB_E2E_FLOOD_SECONDS shortens it for a quick run.
FLOOD_S = float(os.environ.get("IRONLB_E2E_FLOOD_SECONDS", "30"))
PORT = 7946


@pytest.fixture(scope="module", autouse=True)
def pool(kube: Kube) -> Iterator[None]:
    """A pool announced from every node, once every speaker hears every peer."""
    yield from announced_pool(kube, POOL, ["203.0.113.216/29"], NODES)


@pytest.fixture
def web(kube: Kube) -> Iterator[str]:
    """A workload with a pod on every node and its LoadBalancer Service."""
    yield from served_everywhere(kube, "hb-flood", service("hb-flood", pool=POOL), NODES)


def key_file(kube: Kube, tmp_path: Path) -> Path:
    """The heartbeat key, in a file (for signed wrong-source datagrams: what a thief of the key could send)."""
    data = kube.get("secret", "ironlb-heartbeat", namespace="kube-system")["data"]["key"]
    path = tmp_path / "key"
    path.write_bytes(base64.b64decode(data))
    return path


def in_ns(namespace: str, *argv: str) -> subprocess.Popen[str]:
    """Start a lab tool in NAMESPACE (niced: the lab's own control plane shares these cores with it)."""
    return subprocess.Popen(["ip", "netns", "exec", namespace, "nice", "-n", "10", *LAB_PY, *argv],
                            stdout=subprocess.PIPE, text=True)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time PID has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_heartbeat_flood_from_the_lan_and_a_host_network_pod_moves_nothing(kube: Kube, web: str,
                                                                             tmp_path: Path) -> None:
    vip = vip_of(kube, web)
    owner = announcer(kube, web)
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), what="every speaker hears every peer")
    key = key_file(kube, tmp_path)
    deaths = {n: total(metrics(kube, n), "ironlb_speaker_peer_deaths_total") for n in NODES}
    before = {n: heartbeat_counts(kube, n) for n in NODES}
    logs = {n: log_size(n) for n in NODES}
    fast = {n: fast_plane_pid(speaker_pid(n)) for n in NODES}
    cpu = {n: cpu_seconds(pid) for n, pid in fast.items()}
    targets = [a for i in range(1, 4) for a in (lab_node(i).ipv4, lab_node(i).ipv6)]
    stop = tmp_path / "stop"
    sampler = in_ns(lab.namespace_of("client"), "-m", "e2e.probes.arpsampler", vip, "--period", "0.1",
                    "--seconds", str(FLOOD_S + 20), "--stop-file", str(stop))
    floods = [
        # From the LAN: every name, signed with a wrong key and with the real one.
        in_ns(lab.namespace_of("client"), "-m", "e2e.probes.udpflood", "--seconds", str(FLOOD_S),
              "--key-file", str(key), *targets),
        # From node-1's host network, so from node-1's address: naming its peers (and, to its own speaker,
        # arriving from itself).
        in_ns(lab_node(1).netns, "-m", "e2e.probes.udpflood", "--seconds", str(FLOOD_S), "--names", "node-2,node-3",
              "--key-file", str(key), *targets),
    ]
    alive: list[tuple[float, ...]] = []
    try:
        # Every speaker counts all three alive all through the flood.
        while any(f.poll() is None for f in floods):
            alive.append(tuple(total(metrics(kube, n), "ironlb_speaker_alive_peers") for n in NODES))
            time.sleep(0.5)
        sent = [json.loads(f.communicate(timeout=30)[0]) for f in floods]
    finally:
        for f in floods:
            if f.poll() is None:
                f.kill()
                f.wait()
        stop.touch()
    rounds = [json.loads(line) for line in sampler.communicate(timeout=30)[0].splitlines() if line.strip()]
    answered = [r["a"][vip] for r in rounds]
    cpu = {n: round(cpu_seconds(pid) - cpu[n], 2) for n, pid in fast.items()}
    after = {n: heartbeat_counts(kube, n) for n in NODES}
    read = {n: {k: v - before[n].get(k, 0) for k, v in after[n].items() if k.startswith("rejected-")
                and v != before[n].get(k, 0)} for n in NODES}
    flooded = sum(s["sent"] for s in sent)
    print(f"flood for {FLOOD_S} s: {sent}; alive samples {sorted(set(alive))}; ARP rounds {len(rounds)}, "
          f"unanswered {sum(not a for a in answered)}; refused in user space: {read}; fast planes' CPU s: {cpu}")
    assert all(s["rate"] > 0 for s in sent), sent
    assert set(alive) == {(3.0, 3.0, 3.0)}, alive
    assert {n: total(metrics(kube, n), "ironlb_speaker_peer_deaths_total") for n in NODES} == deaths
    for n in NODES:  # no failover anywhere: nothing moved, nobody died
        assert log_lines(n, logs[n], "announcements changed") == 0, n
        assert log_lines(n, logs[n], " is dead (") == 0, n
    assert [a for a in answered if len(a) > 1] == [], "two nodes answered at once"
    assert {m for a in answered for m in a} == {lab.node_mac(owner)}
    assert sum(not a for a in answered) <= len(answered) // 10, "the owner's answers stalled"
    assert announcer(kube, web) == owner
    # The kernel dropped the flood: user space refused a sliver of it at most, and the filter is on everywhere.
    assert sum(sum(r.values()) for r in read.values()) <= flooded // 100, read
    assert all(total(metrics(kube, n), "ironlb_speaker_heartbeat_source_filter") == 1 for n in NODES)


def test_a_host_network_process_cannot_take_the_heartbeat_port(kube: Kube) -> None:
    """Sharing the port (SO_REUSEADDR on both sockets) would let it send heartbeats from the speaker's port."""
    code = ("import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); "
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); "
            f"s.bind(('::', {PORT}))")
    res = kube.exec("node-1", *LAB_PY, "-c", code)
    assert res.returncode != 0 and "Address already in use" in res.stderr, (res.returncode, res.stderr)


def log_time(node: str, since: int, pattern: str) -> float | None:
    """When (epoch seconds) the first line after byte SINCE of NODE's speaker log containing PATTERN was logged."""
    with open(LOG_DIR / f"speaker-{node}.log", "rb") as fh:
        fh.seek(since)
        for line in fh:
            if pattern.encode() in line:
                stamp = json.loads(line)["ts"]
                return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return None


def test_a_restarted_speaker_proves_its_peer_within_a_second_while_its_old_run_is_replayed(
        kube: Kube, tmp_path: Path) -> None:
    a, b = "node-1", "node-2"
    a_ip, recording = lab_node(1).ipv4, tmp_path / "previous-run.hex"
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), what="every speaker hears every peer")
    rec = subprocess.run(["ip", "netns", "exec", lab_node(2).netns, *LAB_PY, "-m", "e2e.probes.udpreplay", "record",
                          str(recording), "--src", a_ip, "--seconds", "2"], capture_output=True, text=True,
                         timeout=30, check=True)
    assert json.loads(rec.stdout)["recorded"] >= 20
    ironlb_procs.restart("speaker", a)  # the recording is now of A's previous run
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=60, what=f"{a} back in the election")
    since = log_size(b)
    # A host-network process on B with NET_RAW: right after each real heartbeat from A, two of A's old run.
    chaser = in_ns(lab_node(2).netns, "-m", "e2e.probes.udpreplay", "chase", str(recording), "--src", a_ip,
                   "--seconds", "25")
    try:
        time.sleep(1.0)
        ironlb_procs.restart("speaker", b)
        proven = wait_for(lambda: log_time(b, since, f"peer {a}: proven"), timeout=15,
                          what=f"{b} proves {a} while the old run is replayed")
        known = log_time(b, since, "heartbeat peers: 2")
        assert known is not None
        time.sleep(3.0)  # past the grace a never-heard peer gets
        assert log_lines(b, since, f"peer {a} is dead") == 0
    finally:
        chaser.kill()
        chaser.communicate(timeout=10)
    print(f"{b} proved {a} {proven - known:.3f} s after it knew its peers")
    assert proven - known <= 1.0
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=60, what="every speaker hears all")
    assert re.search(r"rejected-(unechoed|replayed)", json.dumps(heartbeat_counts(kube, b)))
