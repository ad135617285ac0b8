"""Floods of ARP requests and neighbour solicitations, and claims on every VIP at once, from a host on the LAN.

The node under test announces over 200 IPv4 VIPs (more than the old ARP filter could name) and an IPv6 one.
While a client floods requests for addresses nobody owns, invariants are sampled all through: real requests
for owned VIPs are answered by that node, every speaker hears the other two (no false failover), and the
node's heartbeats, as a peer stamps them on arrival, keep their cadence. Afterwards: the flood never reached
the speaker (the kernel's filters dropped it: neither the responder saw it nor its socket overflowed).
Claims on every VIP at once write no more Events than the speaker's global budget, counted in full by metrics.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from e2e.lab import ironlb_procs, lab
from e2e.lab.config import node as lab_node
from e2e.test_hostile_lan import LAB_PY, NODES, log_lines, log_size, metrics, probe, total
from e2e.testkit.testing import Kube, pool_manifests, wait_for

pytestmark = pytest.mark.lab
T = TypeVar("T")
POOL, APP, LABEL = "e2e-floods", "floods", {"e2e": "floods"}
NODE, PEER = "node-1", "node-2"
RANGES = ["198.51.100.0/25", "203.0.113.0/26", "203.0.113.128/27", "2001:db8:ffff::e00/124"]
SERVICES = 200  # IPv4 VIPs on NODE: past what the old ARP filter could name (it then passed every ARP frame)
RATE, SECONDS = 50_000, 5.0
GAP_P99_MS = 30.0  # the speaker's heartbeat target (speaker_scale)
SAW_AT_MOST = 0.01  # of the flood, reaching the responder or its socket's queue
EVENT_BUDGET = 25 + 2  # the speaker's DuplicateAnswer burst, and what refills in the test's time


def service(name: str, family: str) -> dict:
    """A LoadBalancer Service of APP from POOL."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "labels": LABEL,
                         "annotations": {"ironlb.io/address-pool": POOL}},
            "spec": {"type": "LoadBalancer", "selector": {"app": APP}, "ipFamilies": [family],
                     "ipFamilyPolicy": "SingleStack", "allocateLoadBalancerNodePorts": False,
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def ingress(kube: Kube, name: str) -> str | None:
    """The Service's ingress IP."""
    return (kube.get("service", name).get("status", {}).get("loadBalancer", {}).get("ingress") or [{}])[0].get("ip")


@pytest.fixture(scope="module")
def vips(kube: Kube) -> Iterator[tuple[list[str], str]]:
    """SERVICES IPv4 VIPs and one IPv6 VIP, all announced by NODE only: (IPv4 VIPs, IPv6 VIP)."""
    kube.apply(*pool_manifests(POOL, RANGES, advertisement={
        "nodeSelectors": [{"matchLabels": {"kubernetes.io/hostname": NODE}}]}))
    kube.deploy(APP, replicas=1, nodes=[NODE])
    names = [f"flood-{i:03d}" for i in range(SERVICES)]
    items = [service(n, "IPv4") for n in names] + [service("flood-v6", "IPv6")]
    try:
        kube.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        wait_for(lambda: total(metrics(kube, NODE), "ironlb_speaker_announced_ips") >= SERVICES + 1, timeout=180,
                 interval=2, what=f"{NODE} announcing {SERVICES + 1} VIPs")
        v4 = [ingress(kube, n) for n in names]
        v6 = ingress(kube, "flood-v6")
        assert all(v4) and v6
        yield v4, v6
    finally:
        kube.kubectl("delete", "service", "-l", "e2e=floods", "--wait=false")
        kube.undeploy(APP)
        kube.kubectl("delete", "l2advertisement", POOL, "--ignore-not-found")
        kube.kubectl("delete", "ipaddresspool", POOL, "--ignore-not-found")


def in_netns(name: str, module: str, *args: str) -> subprocess.Popen[str]:
    """Run a lab tool (python -m MODULE) in lab namespace NAME."""
    return subprocess.Popen(["ip", "netns", "exec", lab.namespace_of(name), *LAB_PY, "-m", module, *args],
                            stdout=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 30) -> dict:
    """The JSON a lab tool printed (killed if it outlives TIMEOUT)."""
    try:
        return json.loads(proc.communicate(timeout=timeout)[0])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def flood_and_watch(kube: Kube, kind: str, vip: str) -> tuple[dict, dict, dict[str, dict], dict[str, dict]]:
    """Flood KIND requests from the client while checking invariants; (flood, gaps, metrics before, after)."""
    before = {n: metrics(kube, n) for n in NODES}
    logs = {n: log_size(n) for n in NODES}
    gaps = in_netns(PEER, "e2e.probes.hbgaps", "--src", lab_node(int(NODE[-1])).ipv4, "--seconds", str(SECONDS + 1))
    time.sleep(0.5)
    flood = in_netns("client", "e2e.probes.requestflood", kind, "--rate", str(RATE), "--seconds", str(SECONDS))
    answers, alive = [], []
    try:
        # All through the flood: an owned VIP is answered, by NODE alone; every speaker hears the other two.
        while flood.poll() is None:
            answers.append([r["mac"] for r in probe(kube, vip, wait=0.3)])
            alive.append(min(total(metrics(kube, n), "ironlb_speaker_alive_peers") for n in NODES))
        sent = finish(flood)
    finally:
        if flood.poll() is None:
            flood.kill()
    heard = finish(gaps)
    time.sleep(1.5)  # the fast plane's counters reach the metrics once a second
    after = {n: metrics(kube, n) for n in NODES}
    print(f"{kind} flood {sent}; heartbeats {heard}; {len(answers)} probes; min alive {min(alive, default=None)}")
    mac = lab.node_mac(NODE)
    assert answers and all(a == [mac] for a in answers), answers
    assert min(alive) == 3, alive
    for n in NODES:  # no failover anywhere
        deaths = "ironlb_speaker_peer_deaths_total"
        assert total(after[n], deaths) == total(before[n], deaths), n
        assert log_lines(n, logs[n], "announcements changed") == 0, n
    return sent, heard, before[NODE], after[NODE]


def settled(read: Callable[[], T], measure: Callable[[T], float], rounds: int = 3, bound: float = 60) -> T:
    """What READ returns once MEASURE of it held for ROUNDS reads a second apart (or after BOUND seconds)."""
    deadline, seen = time.monotonic() + bound, []
    while True:
        value = read()
        seen.append(measure(value))
        if (len(seen) >= rounds and seen[-rounds:] == [seen[-1]] * rounds) or time.monotonic() > deadline:
            return value
        time.sleep(1)


def reached_the_speaker(before: dict, after: dict) -> float:
    """Requests the responder handled plus frames its sockets' queues dropped, between two scrapes."""
    return sum(total(after, m) - total(before, m)
               for m in ("ironlb_speaker_requests_total", "ironlb_speaker_kernel_drops_total"))


@pytest.mark.parametrize("kind", ["arp", "ndp"])
def test_a_request_flood_never_reaches_the_speaker(kube: Kube, vips: tuple[list[str], str], kind: str) -> None:
    v4, v6 = vips
    sent, heard, before, after = flood_and_watch(kube, kind, v4[0] if kind == "arp" else v6)
    seen = reached_the_speaker(before, after)
    print(f"{kind}: {seen:.0f} of {sent['sent']} flood frames reached {NODE}'s speaker")
    assert sent["sent"] >= RATE * SECONDS * 0.5, "the client could not flood: this run proves nothing"
    assert seen <= sent["sent"] * SAW_AT_MOST, f"{seen:.0f} of {sent['sent']} reached the speaker"
    assert heard["heartbeats"] >= SECONDS / 0.025 * 0.8
    assert heard["gap_p99_ms"] <= GAP_P99_MS, heard


def announcing_every_vip(kube: Kube) -> bool:
    """NODE's speaker serves its metrics and announces every VIP of the module."""
    try:
        return total(metrics(kube, NODE), "ironlb_speaker_announced_ips") >= SERVICES + 1
    except AssertionError:  # restarting: no metrics yet
        return False


def test_claims_on_every_vip_write_events_within_one_global_budget(kube: Kube, vips: tuple[list[str], str]) -> None:
    v4, _ = vips
    # The budget is the speaker process's: an earlier test on this lab may have spent it. A fresh one has it whole.
    ironlb_procs.restart("speaker", NODE)
    wait_for(lambda: announcing_every_vip(kube), timeout=60, interval=1, what=f"{NODE} announcing again")
    before = settled(lambda: metrics(kube, NODE), lambda m: total(m, "ironlb_speaker_events_total"))
    frames = len(v4) * 20
    flood = in_netns("client", "e2e.probes.arpflood", *v4, "--count", str(frames), "--rate", "2000", "--macs", "2")
    assert finish(flood, timeout=40)["sent"] == frames

    def events() -> list[dict]:
        res = kube.kubectl("get", "events", "-n", "default", "-o", "json", "--field-selector", "reason=DuplicateAnswer")
        return [e for e in json.loads(res.stdout)["items"] if e["involvedObject"]["name"].startswith("flood-")]

    settled(events, len)
    after = wait_for(lambda: (m := metrics(kube, NODE)) and total(m, "ironlb_speaker_duplicate_answers_total")
                     - total(before, "ironlb_speaker_duplicate_answers_total") >= frames // 2 and m,
                     timeout=10, what="the claims counted")

    def grew(outcome: str) -> float:
        key = f'ironlb_speaker_events_total{{outcome="{outcome}"}}'
        return after.get(key, 0) - before.get(key, 0)

    writes = grew("emitted") + grew("aggregated") + grew("combined")
    found = events()
    print(f"{frames} claims on {len(v4)} VIPs: {len(found)} Event objects over "
          f"{len({e['involvedObject']['name'] for e in found})} Services; writes at most {writes:.0f}, "
          f"throttled {grew('throttled'):.0f}, per-object dropped {grew('dropped'):.0f}")
    assert 1 <= len(found) <= EVENT_BUDGET
    assert writes <= EVENT_BUDGET
    assert grew("throttled") > 0  # the rest were counted, not written
