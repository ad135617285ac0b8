"""The speaker under operations that must not move an IP (key rotation), refreshes, and self-fencing."""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from e2e.lab import ironlb_procs, lab, netns, procs
from e2e.lab.config import BRIDGE_NS, REPO
from e2e.lab.config import node as lab_node
from e2e.test_loadbalancer import announcer, probe, service, vip_of
from e2e.testkit.testing import Kube, announced_pool, served_everywhere, speaker_hears_all, wait_for
from ironlb.core.election import elect

pytestmark = pytest.mark.lab
POOL = "e2e-resilience"
NODES = ("node-1", "node-2", "node-3")


def metric(kube: Kube, node: str, name: str) -> float:
    """One sample of the speaker's metrics on NODE (0 if absent)."""
    text = kube.exec(node, "curl", "-s", "-m", "1", "http://127.0.0.1:7473/metrics", check=True).stdout
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.fixture(scope="module", autouse=True)
def pool(kube: Kube) -> Iterator[None]:
    """A pool announced from every node, once every speaker hears every peer."""
    yield from announced_pool(kube, POOL, ["203.0.113.160/28"], NODES)


@pytest.fixture
def web(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A workload with a pod on every node and a LoadBalancer Service of the same name."""
    name = "res-" + request.node.name.replace("_", "-")[5:25].strip("-")
    yield from served_everywhere(kube, name, service(name, pool=POOL), NODES)


def secret(kube: Kube) -> dict:
    """The heartbeat Secret."""
    return kube.get("secret", "ironlb-heartbeat", namespace="kube-system")


def test_a_key_rotation_under_an_announced_service_moves_nothing(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    owner = announcer(kube, web)
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), what="every speaker hears every peer")
    deaths = {n: metric(kube, n, "ironlb_speaker_peer_deaths_total") for n in NODES}
    bad_mac = {n: metric(kube, n, 'ironlb_speaker_heartbeats_total{direction="rejected-bad-mac"}') for n in NODES}
    old_key = secret(kube)["data"]["key"]
    token = str(time.time())
    kube.kubectl("-n", "kube-system", "annotate", "secret", "ironlb-heartbeat", f"ironlb.io/rotate={token}",
                 "--overwrite")
    seen_phases: set[str] = set()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        ann = secret(kube)["metadata"].get("annotations") or {}
        seen_phases.add(ann.get("ironlb.io/rotation-phase", "idle"))
        assert announcer(kube, web) == owner, "the IP moved during the rotation"
        if ann.get("ironlb.io/rotated") == token and "ironlb.io/rotation-phase" not in ann:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"rotation did not finish (phases seen: {seen_phases})")
    assert {"accepting-next", "retiring-previous"} <= seen_phases
    data = secret(kube)["data"]
    assert data["key"] != old_key and set(data) == {"key"}, "the old key is gone and only the new one is left"
    assert len(base64.b64decode(data["key"])) >= 32
    # Speakers now sign with the new key only: still hearing each other proves every one took it.
    time.sleep(1.0)
    assert all(speaker_hears_all(kube, n) for n in NODES)
    assert {n: metric(kube, n, "ironlb_speaker_peer_deaths_total") for n in NODES} == deaths, "a peer was declared dead"
    assert {n: metric(kube, n, 'ironlb_speaker_heartbeats_total{direction="rejected-bad-mac"}')
            for n in NODES} == bad_mac, "some heartbeat was refused under the keys of the moment"
    assert announcer(kube, web) == owner
    assert [r["mac"] for r in wait_for(lambda: probe(kube, vip), what="ARP")] == [lab.node_mac(owner)]


def garps(kube: Kube, vip: str, seconds: float) -> list[dict]:
    """Gratuitous ARPs for VIP the client hears within SECONDS."""
    res = kube.exec("client", "env", f"PYTHONPATH={REPO / 'src'}:{REPO}", str(REPO / ".venv/bin/python"), "-m",
                    "e2e.probes.arpwatch", vip, "--seconds", str(seconds), timeout=seconds + 15, check=True)
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def test_periodic_reannounce_reaches_the_client_only_when_on(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    owner = announcer(kube, web)
    assert garps(kube, vip, 2.5) == [], "off by default: no refresh while nothing changes"
    ironlb_procs.restart("speaker", owner, env={"IRONLB_REANNOUNCE_INTERVAL": "0.5"})
    try:
        wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=40, what="the speaker back")
        wait_for(lambda: announcer(kube, web) == owner, timeout=20, what="the IP back on its node")
        time.sleep(1.0)  # past the takeover burst
        seen = garps(kube, vip, 3.0)
        assert {g["mac"] for g in seen} == {lab.node_mac(owner)}
        assert 4 <= len(seen) <= 8, seen  # every 0.5 s for 3 s
        gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(seen)]
        assert all(0.3 < g < 0.8 for g in gaps), gaps
    finally:
        ironlb_procs.restart("speaker", owner)
        wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=40, what="the speaker back")


def fenced(kube: Kube, node: str) -> str | None:
    """The reason NODE's speaker gives for being fenced, or None while it answers."""
    text = kube.exec(node, "curl", "-s", "-m", "1", "http://127.0.0.1:7473/metrics").stdout
    match = re.search(r'^ironlb_speaker_fenced\{reason="([^"]+)"\} 1\.0$', text, re.MULTILINE)
    return match.group(1) if match else None


def answers(kube: Kube, vip: str) -> list[str]:
    """MACs answering one ARP request for VIP from the client."""
    return [r["mac"] for r in probe(kube, vip, wait=0.3)]


def steady_single_answer(kube: Kube, vip: str, node: str, samples: int = 10) -> None:
    """SAMPLES ARP requests in a row each get exactly one reply, from NODE."""
    got = [answers(kube, vip) for _ in range(samples)]
    assert all(a == [lab.node_mac(node)] for a in got), got


@contextmanager
def heartbeats_blocked(kube: Kube, node: str) -> Iterator[None]:
    """Drop heartbeats to and from NODE (it stays on the client's segment and reaches the API)."""
    rules = ("table inet ilb_e2e_partition { "
             "chain hb_in { type filter hook input priority -10; udp dport 7946 drop; }; "
             "chain hb_out { type filter hook output priority -10; udp dport 7946 drop; }; }")
    kube.exec(node, "nft", rules, check=True)
    try:
        yield
    finally:
        kube.exec(node, "nft", "delete", "table", "inet", "ilb_e2e_partition")


@contextmanager
def unplugged(node: str) -> Iterator[None]:
    """Pull NODE's node-segment cable at the bridge: its eth0 stays up but loses carrier."""
    port = lab_node(int(node[-1])).bridge_port
    netns.ip("link", "set", port, "down", netns=BRIDGE_NS)
    try:
        yield
    finally:
        netns.ip("link", "set", port, "up", netns=BRIDGE_NS)


def test_a_node_that_loses_carrier_fences_itself_and_takes_its_ips_back_on_heal(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    owner = announcer(kube, web)
    heir = elect(vip, [n for n in NODES if n != owner])
    with unplugged(owner):
        assert wait_for(lambda: fenced(kube, owner), timeout=5, interval=0.1, what="fenced") == "fence-no-carrier"
        wait_for(lambda: answers(kube, vip) == [lab.node_mac(heir)], timeout=5, interval=0.1, what="heir answers")
        assert wait_for(lambda: announcer(kube, web) == heir, what="heir announces")
        steady_single_answer(kube, vip, heir)
    wait_for(lambda: fenced(kube, owner) is None, timeout=40, what="unfenced after heal")
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=40, what="every speaker hears every peer")
    wait_for(lambda: announcer(kube, web) == owner, timeout=20, what="the IP back on its node")
    time.sleep(1.0)
    steady_single_answer(kube, vip, owner)


def test_a_node_cut_from_its_peers_but_not_from_clients_stops_answering(kube: Kube, web: str) -> None:
    vip = vip_of(kube, web)
    owner = announcer(kube, web)
    heir = elect(vip, [n for n in NODES if n != owner])
    with heartbeats_blocked(kube, owner):
        # Its peers' node Leases keep renewing while it hears none of them: it is the isolated one.
        assert wait_for(lambda: fenced(kube, owner), timeout=10, interval=0.1, what="fenced") == "fence-peers-alive"
        wait_for(lambda: answers(kube, vip) == [lab.node_mac(heir)], timeout=5, interval=0.1, what="only the heir")
        steady_single_answer(kube, vip, heir)
        assert all(fenced(kube, n) is None for n in NODES if n != owner), "the majority side keeps answering"
    wait_for(lambda: fenced(kube, owner) is None, timeout=40, what="unfenced after heal")
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=40, what="every speaker hears every peer")
    wait_for(lambda: announcer(kube, web) == owner, timeout=20, what="the IP back on its node")
    time.sleep(1.0)
    steady_single_answer(kube, vip, owner)


def test_a_restarting_speakers_ips_stay_answered_with_its_nodes_mac(kube: Kube, web: str) -> None:
    """While the announcing node's speaker restarts, a peer answers ARP for its VIP with the node's own MAC:
    every sample across the restart is answered, by that MAC alone, and the IP never moves."""
    vip = vip_of(kube, web)
    owner = announcer(kube, web)
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), what="every speaker hears every peer")
    peers = [n for n in NODES if n != owner]
    deaths = {n: metric(kube, n, "ironlb_speaker_peer_deaths_total") for n in peers}
    restarted = threading.Timer(1.0, lambda: ironlb_procs.restart("speaker", owner))
    restarted.start()
    try:
        samples = arp_samples(kube, vip, seconds=10.0)
    finally:
        restarted.join()
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=40, what="the speaker back")
    answered = [s for s in samples if s["a"][vip]]
    assert len(samples) > 100 and {m for s in answered for m in s["a"][vip]} == {lab.node_mac(owner)}
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(answered)]
    assert max(gaps) < 0.5, f"no answer for {max(gaps):.2f} s during the restart"
    assert announcer(kube, web) == owner
    # Held, not dead: no peer counted the restart as a death.
    assert {n: metric(kube, n, "ironlb_speaker_peer_deaths_total") for n in peers} == deaths


def arp_samples(kube: Kube, vip: str, seconds: float) -> list[dict]:
    """ARP requests for VIP from the client every 50 ms for SECONDS: each round's answering MACs."""
    res = kube.exec("client", "env", f"PYTHONPATH={REPO / 'src'}:{REPO}", str(REPO / ".venv/bin/python"), "-m",
                    "e2e.probes.arpsampler", vip, "--seconds", str(seconds), timeout=seconds + 15, check=True)
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def test_a_node_that_dies_while_its_speaker_restarts_is_taken_over_at_once(kube: Kube, web: str) -> None:
    """The worst moment for a hold: the announcing node's speaker has stopped (its peers answer for it with its
    MAC) and then the node dies. Its host stops answering, its hold ends, and a peer takes the IP over with its
    own MAC within seconds, not at the hold's end."""
    vip = vip_of(kube, web)
    owner = announcer(kube, web)
    wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), what="every speaker hears every peer")
    procs.stop(f"speaker-{owner}")  # SIGTERM: a restart, as far as its peers can tell
    try:
        time.sleep(1.0)
        assert [r["mac"] for r in probe(kube, vip)] == [lab.node_mac(owner)], "answered for, with its MAC"
        killed = time.monotonic()
        lab.kill_node(owner)
        new = wait_for(lambda: (a := announcer(kube, web)) != owner and a, timeout=15, what="the IP taken over")
        wait_for(lambda: [r["mac"] for r in probe(kube, vip, wait=0.3)] == [lab.node_mac(new)], timeout=10,
                 what="answered from the new node's MAC")
        taken = time.monotonic() - killed
        print(f"taken over {taken:.2f} s after the held node died")
        assert taken < 10.0  # the hold would have lasted a minute
        assert kube.curl("client", f"http://{vip}/")
    finally:
        lab.revive_node(owner)
        wait_for(lambda: all(speaker_hears_all(kube, n) for n in NODES), timeout=60, what="the node back")
