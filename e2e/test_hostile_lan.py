"""The speaker on a hostile LAN: spoofed floods and interfaces that come and go change nothing.

- A bounded flood of spoofed ARP replies claiming an announced VIP makes a handful of Event
  objects (the shared recorder aggregates and rate-limits), is counted in full by the metrics,
  logs a few lines, and neither stalls ARP replies to real requests nor heartbeats.
- Veth pairs created and deleted on the announcing node (what a CNI does for pods) are not
  announced on, make no DuplicateAnswer Event, do not crash the speaker, and leak no socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.lab import ironlb_procs, lab, workload
from e2e.lab.config import LOG_DIR, REPO
from e2e.lab.config import node as lab_node
from e2e.lab.state import load_state
from e2e.testkit.testing import Kube, pool_manifests, speaker_hears_all, wait_for

pytestmark = pytest.mark.lab
POOL = "e2e-hostile"
NODES = ("node-1", "node-2", "node-3")
FLOOD = 10_000
HANDFUL = 10  # client-go's rule: 9 distinct messages, then one "(combined from similar events)" Event
LAB_PY = ("env", f"PYTHONPATH={REPO / 'src'}:{REPO}", str(REPO / ".venv/bin/python"))


@pytest.fixture(scope="module", autouse=True)
def pool(kube: Kube) -> Iterator[None]:
    """A small pool announced from every node."""
    kube.apply(*pool_manifests(POOL, ["203.0.113.176/29", "2001:db8:ffff::c00/124"]))
    yield
    kube.kubectl("delete", "l2advertisement", POOL, "--ignore-not-found")
    kube.kubectl("delete", "ipaddresspool", POOL, "--ignore-not-found")


@pytest.fixture
def target(kube: Kube, request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    """A Service with a pod on every node: (name, VIP, announcing node)."""
    yield from service_on_every_node(kube, "hostile-" + request.node.name.split("_")[1])


def service_on_every_node(kube: Kube, name: str, family: str = "IPv4") -> Iterator[tuple[str, str, str]]:
    """Deploy NAME with a pod on every node and its LoadBalancer Service; yield (name, VIP, node); remove."""
    kube.deploy(name, replicas=3, nodes=list(NODES))
    kube.apply({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "default", "annotations": {"ironlb.io/address-pool": POOL}},
                "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ipFamilies": [family],
                         "ipFamilyPolicy": "SingleStack",
                         "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    try:
        vip = wait_for(lambda: (kube.get("service", name).get("status", {}).get("loadBalancer", {})
                                .get("ingress") or [{}])[0].get("ip"), what="ingress IP")
        message = wait_for(lambda: announced(kube, name), what="Announced condition")
        node = re.search(r"node (node-\d+)", message).group(1)
        wait_for(lambda: arp_replies(kube, vip) == [lab.node_mac(node)], what="one ARP reply")
        yield name, vip, node
    finally:
        kube.kubectl("delete", "service", name, "--wait=false")
        kube.undeploy(name)


def announced(kube: Kube, name: str) -> str | None:
    """The message of the Service's Announced condition while it is True."""
    conds = kube.get("service", name).get("status", {}).get("conditions") or []
    return next((c["message"] for c in conds if c["type"] == "ironlb.io/Announced" and c["status"] == "True"), None)


def arp_replies(kube: Kube, ip: str, wait: float = 0.5) -> list[str]:
    """MACs answering one ARP request for IP from the client, in order."""
    return [r["mac"] for r in probe(kube, ip, wait)]


def probe(kube: Kube, ip: str, wait: float = 0.5, unicast: str | None = None) -> list[dict]:
    """The replies to one ARP request / NS from the client (to MAC UNICAST only, if given): [{"mac", "ms"}]."""
    extra = ["--unicast", unicast] if unicast else []
    res = kube.exec("client", *LAB_PY, "-m", "e2e.probes.arpprobe", ip, "--wait", str(wait), *extra, check=True)
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def metrics(kube: Kube, node: str) -> dict[str, float]:
    """The node's speaker metrics: 'name{labels}' -> value."""
    res = kube.exec(node, "curl", "-s", "-m", "2", "http://127.0.0.1:7473/metrics", check=True)
    out = {}
    for line in res.stdout.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def total(values: dict[str, float], name: str) -> float:
    """Sum of a metric over its labels."""
    return sum(v for k, v in values.items() if k == name or k.startswith(name + "{"))


def duplicate_events(kube: Kube, name: str) -> list[dict]:
    """DuplicateAnswer Event objects about Service NAME."""
    res = kube.kubectl("get", "events", "-n", "default", "-o", "json", "--field-selector",
                       f"involvedObject.name={name},reason=DuplicateAnswer")
    return json.loads(res.stdout)["items"]


def settled_events(kube: Kube, name: str, bound: float = 60) -> list[dict]:
    """DuplicateAnswer Events about NAME once their number held for 3 s (or after BOUND seconds)."""
    deadline, counts = time.monotonic() + bound, []
    while True:
        events = duplicate_events(kube, name)
        counts.append(len(events))
        if counts[-4:] == [counts[-1]] * 4 or time.monotonic() > deadline:
            return events
        time.sleep(1)


def speaker_pid(node: str) -> int:
    """PID of the speaker process itself (the child of the lab's supervisor)."""
    supervisor = load_state().procs[f"speaker-{node}"].pid
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def fast_plane_pid(speaker: int) -> int:
    """PID of the speaker's fast plane (its one child process: heartbeats and the ARP/NDP sockets)."""
    children = [c for task in Path(f"/proc/{speaker}/task").iterdir()
                for c in (task / "children").read_text().split()]
    assert len(children) == 1, children
    return int(children[0])


def speaker_sockets(speaker: int) -> dict[str, int]:
    """Open sockets of both of the speaker's processes, by kind (see `open_sockets`)."""
    control, fast = open_sockets(speaker), open_sockets(fast_plane_pid(speaker))
    return {kind: control[kind] + fast[kind] for kind in control}


def open_sockets(pid: int) -> dict[str, int]:
    """The process's open sockets by kind: packet (ARP/NDP), netlink, and all of them."""
    inodes = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed while we looked
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.append(target[8:-1])
    out = {"all": len(inodes)}
    for kind in ("packet", "netlink"):
        lines = Path(f"/proc/{pid}/net/{kind}").read_text().splitlines()[1:]
        ours = {line.split()[-1] for line in lines if line.split()}
        out[kind] = sum(i in ours for i in inodes)
    return out


def log_lines(node: str, since: int, pattern: str) -> int:
    """Lines of the node's speaker log after byte offset SINCE that contain PATTERN."""
    with open(LOG_DIR / f"speaker-{node}.log", "rb") as fh:
        fh.seek(since)
        return sum(pattern.encode() in line for line in fh)


def log_size(node: str) -> int:
    """Current size of the node's speaker log."""
    return (LOG_DIR / f"speaker-{node}.log").stat().st_size


def test_spoofed_flood_makes_a_handful_of_events_and_stalls_nothing(kube: Kube, target: tuple[str, str, str]) -> None:
    name, vip, node = target
    mac, condition = lab.node_mac(node), announced(kube, name)
    before = metrics(kube, node)
    logs = {n: log_size(n) for n in NODES}
    flood = subprocess.Popen(["ip", "netns", "exec", lab.namespace_of("client"), *LAB_PY, "-m", "e2e.probes.arpflood",
                              vip, "--count", str(FLOOD), "--rate", "2500", "--macs", "50"],
                             stdout=subprocess.PIPE, text=True)
    answers, alive = [], []
    try:
        # Invariants sampled all through the flood: real requests get one answer, from the elected node, at
        # once; every speaker still hears the other two (heartbeats are not starved).
        while flood.poll() is None:
            answers.append(probe(kube, vip, wait=0.3))
            alive.append(min(total(metrics(kube, n), "ironlb_speaker_alive_peers") for n in NODES))
        sent = json.loads(flood.communicate(timeout=40)[0])["sent"]
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait()
    events = settled_events(kube, name)
    latencies = [r[0]["ms"] for r in answers if r]
    print(f"flood of {sent}: {len(events)} DuplicateAnswer Event objects, counts {sorted(e['count'] for e in events)}"
          f"; {len(answers)} probes during it, max reply {max(latencies, default=None)} ms, min alive {alive}")
    assert sent == FLOOD
    assert 1 <= len(events) <= HANDFUL
    assert all(e["type"] == "Warning" and e["source"]["host"] == node for e in events)
    assert any(e["message"].startswith("(combined from similar events)") for e in events)  # 50 distinct MACs
    assert answers and all([r["mac"] for r in replies] == [mac] for replies in answers), answers
    assert max(latencies) < 100, latencies
    assert min(alive) == 3, alive
    # Every spoofed frame is accounted for: counted by the recorder, or counted as dropped by the kernel
    # (a packet socket's queue overflows under load; the speaker exports those drops rather than hide them).
    def grew(m: dict[str, float], name: str) -> float:
        return total(m, name) - total(before, name)

    drops, dups, recorded = ("ironlb_speaker_kernel_drops_total", "ironlb_speaker_duplicate_answers_total",
                             "ironlb_speaker_events_total")
    # The fast plane counts the frames; the recorder is asked once per (IP, MAC, interface) per report.
    after = wait_for(lambda: (m := metrics(kube, node)) and grew(m, dups) + grew(m, drops) >= FLOOD and m,
                     timeout=10, what="every spoofed frame counted as a duplicate or as a kernel drop")
    print(f"kernel drops {grew(after, drops)}, duplicates {grew(after, dups)}, recorded {grew(after, recorded)}")
    assert 1 <= grew(after, recorded) <= grew(after, dups)
    assert grew(after, dups) >= FLOOD // 4, "the responder kept up with at most a small share of the flood"
    assert log_lines(node, logs[node], "answers for") <= 5
    for n in NODES:  # no failover anywhere: nothing moved, nothing was re-announced
        assert log_lines(n, logs[n], "announcements changed") == 0, n
    assert announced(kube, name) == condition
    assert arp_replies(kube, vip) == [mac]


def test_pod_veths_coming_and_going_are_never_a_duplicate(kube: Kube, target: tuple[str, str, str]) -> None:
    name, vip, node = target
    netns = lab_node(int(node[-1])).netns
    pid = speaker_pid(node)
    fast = fast_plane_pid(pid)
    baseline = speaker_sockets(pid)
    assert open_sockets(fast)["packet"] >= 2, "the fast plane holds the ARP/NDP sockets"
    duplicates = total(metrics(kube, node), "ironlb_speaker_duplicate_answers_total")
    pairs = [(f"ilbp{i}a", f"ilbp{i}b") for i in range(10)]
    try:
        # As a CNI does for pods, at 10 per second: create and bring up, then delete again a second later.
        for a, b in pairs:
            subprocess.run(["ip", "-n", netns, "link", "add", a, "type", "veth", "peer", "name", b], check=True)
            subprocess.run(["ip", "-n", netns, "link", "set", a, "up"], check=True)
            subprocess.run(["ip", "-n", netns, "link", "set", b, "up"], check=True)
            time.sleep(0.1)
        time.sleep(1.0)
        for a, _ in pairs:
            subprocess.run(["ip", "-n", netns, "link", "del", a], check=True)
            time.sleep(0.1)
    finally:
        for a, _ in pairs:
            subprocess.run(["ip", "-n", netns, "link", "del", a], capture_output=True)
    time.sleep(2.0)  # any gratuitous burst heard from the other end would have been reported by now
    events = duplicate_events(kube, name)
    print(f"veth churn: {len(events)} DuplicateAnswer Event objects, counts {[e['count'] for e in events]}")
    assert events == []
    assert speaker_pid(node) == pid and fast_plane_pid(pid) == fast, "the speaker or its fast plane restarted"
    # Packet and netlink sockets exactly as before; the API client's connection pool may keep one more.
    now = wait_for(lambda: (n := speaker_sockets(pid))["packet"] == baseline["packet"] and
                   n["netlink"] == baseline["netlink"] and n, timeout=10, what=f"sockets back to {baseline}")
    assert now["all"] <= baseline["all"] + 2, (baseline, now)
    assert total(metrics(kube, node), "ironlb_speaker_duplicate_answers_total") == duplicates
    assert arp_replies(kube, vip) == [lab.node_mac(node)]


def test_unicast_reachability_probes_are_answered(kube: Kube, target: tuple[str, str, str]) -> None:
    _, vip, node = target
    mac = lab.node_mac(node)
    assert [r["mac"] for r in probe(kube, vip, unicast=mac)] == [mac]
    v6 = service_on_every_node(kube, "hostile-unicast6", "IPv6")
    _, vip6, node6 = next(v6)
    try:
        assert [r["mac"] for r in probe(kube, vip6, unicast=lab.node_mac(node6))] == [lab.node_mac(node6)]
    finally:
        v6.close()
    # The client's own kernel, allowed unicast probes only (as for an entry it re-checks): STALE, some
    # traffic, DELAY, PROBE to the known MAC; answered, the entry is REACHABLE again, else FAILED.
    knobs = {k: f"net.ipv4.neigh.eth0.{k}" for k in ("mcast_solicit", "app_solicit", "delay_first_probe_time")}
    saved = {k: kube.exec("client", "sysctl", "-n", v, check=True).stdout.strip() for k, v in knobs.items()}
    try:
        for k, v in {"mcast_solicit": "0", "app_solicit": "0", "delay_first_probe_time": "1"}.items():
            kube.exec("client", "sysctl", "-w", f"{knobs[k]}={v}", check=True)
        kube.exec("client", "ip", "neigh", "replace", vip, "lladdr", mac, "dev", "eth0", "nud", "stale", check=True)
        kube.exec("client", "bash", "-c", f"echo probe > /dev/udp/{vip}/9", check=True)  # UDP confirms nothing
        wait_for(lambda: "REACHABLE" in (state := kube.exec("client", "ip", "neigh", "show", vip).stdout) or
                 ("FAILED" in state and pytest.fail(state)), timeout=10, what="the kernel's unicast probe answered")
    finally:
        for k, v in saved.items():
            kube.exec("client", "sysctl", "-w", f"{knobs[k]}={v}")
        kube.exec("client", "ip", "neigh", "del", vip, "dev", "eth0")


def heartbeat_counts(kube: Kube, node: str) -> dict[str, float]:
    """The node's heartbeat counters by direction (sent, received, rejected-REASON)."""
    m = metrics(kube, node)
    return {k.split('direction="')[1].rstrip('"}'): v for k, v in m.items()
            if k.startswith("ironlb_speaker_heartbeats_total{")}


def test_recorded_heartbeats_replayed_never_move_an_ip(kube: Kube, target: tuple[str, str, str],
                                                       tmp_path: Path) -> None:
    name, vip, a = target
    b = next(n for n in NODES if n != a)
    a_ip, recording = lab_node(int(a[-1])).ipv4, tmp_path / "heartbeats.hex"
    # Record A's heartbeats to B across a restart of A's speaker: the old run, its goodbye, the new run.
    recorder = subprocess.Popen(["ip", "netns", "exec", lab.namespace_of(b), *LAB_PY, "-m", "e2e.probes.udpreplay",
                                 "record", str(recording), "--src", a_ip, "--seconds", "12"],
                                stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    ironlb_procs.restart("speaker", a)
    wait_for(lambda: (m := announced(kube, name)) and f"node {a}" in m and speaker_hears_all(kube, a), timeout=30,
             what=f"{a} announcing again after its restart")
    time.sleep(1.0)
    assert json.loads(recorder.communicate(timeout=30)[0])["recorded"] >= 20

    def replay_watching(node: str) -> list[float]:
        """Replay the recording to B twice over; NODE's count of alive peers, sampled all the while."""
        proc = subprocess.Popen(["ip", "netns", "exec", lab.namespace_of("client"), *LAB_PY, "-m",
                                 "e2e.probes.udpreplay", "replay", str(recording), "--times", "2", "--rate", "100"],
                                stdout=subprocess.PIPE, text=True)
        seen = []
        while proc.poll() is None:
            seen.append(total(metrics(kube, node), "ironlb_speaker_alive_peers"))
            time.sleep(0.1)
        assert json.loads(proc.communicate(timeout=60)[0])["sent"] >= 40
        seen.append(total(metrics(kube, node), "ironlb_speaker_alive_peers"))
        return seen

    # A alive: its old alives, its old goodbye and its current run's alives, all again: B's view stays.
    condition, before = announced(kube, name), heartbeat_counts(kube, b)
    assert set(replay_watching(b)) == {3}
    after = heartbeat_counts(kube, b)
    refused = sum(v - before.get(k, 0) for k, v in after.items() if k.startswith("rejected-"))
    print(f"replayed to {b} with {a} alive: {({k: v - before.get(k, 0) for k, v in after.items()})}")
    assert refused >= 40  # every replayed datagram arrived, and was refused
    assert announced(kube, name) == condition
    # A dead, and B restarted (nothing remembered): the recording does not bring A back to life at B.
    workload.set_ready(f"{name}-{NODES.index(a)}", False)
    lab.kill_node(a)
    try:
        moved = wait_for(lambda: (m := announced(kube, name)) and f"node {a}" not in m and m, timeout=15,
                         what="the IP moved off the killed node")
        ironlb_procs.restart("speaker", b)
        # Joined, and past the grace a peer never heard gets (2 s): from here on, only a heartbeat makes A alive.
        wait_for(lambda: kube.exec(b, "curl", "-sf", "-m", "1", "http://127.0.0.1:7474/readyz").returncode == 0,
                 timeout=30, what=f"{b} back and joined")
        time.sleep(2.5)
        assert total(metrics(kube, b), "ironlb_speaker_alive_peers") == 2
        seen = replay_watching(b)
        print(f"replayed to a restarted {b} with {a} dead: alive peers seen {seen}")
        assert set(seen) == {2}
        owner = re.search(r"node (node-\d+)", moved).group(1)
        wait_for(lambda: announced(kube, name) == moved, what="the condition as before the replay")
        assert arp_replies(kube, vip) == [lab.node_mac(owner)]
    finally:
        lab.revive_node(a)
        workload.set_ready(f"{name}-{NODES.index(a)}", True)
        # Leave the lab as found: A back in the election (past its join gate), heard by every peer.
        wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=60, what=f"{a} back in the election")

