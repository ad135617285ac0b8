"""Ring mode's probes: a few a round in a fixed rotation, so a node's datagrams stay flat at any cluster size,
and every peer is still probed once a probe cycle."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from ironlb.speaker.fast.liveness import sends
from ironlb.speaker.fast.liveness.probes import PROBE_BUDGET_PER_S, Rotation, probe_cycle
from ironlb.speaker.fast.liveness.protocol import RING_VERSION, Kind
from ironlb.speaker.fast.liveness.ringmode import Topology
from ironlb.speaker.fast.liveness.transport import Liveness
from ironlb.speaker.fast.liveness.upgrade import Mode
from tests.unit.speaker.fast.liveness.test_heartbeat_sends import Socket

INTERVAL = 0.025
# Issue 25's target for a node's datagrams: four neighbours every round (40 a second), the probes' budget,
# the notices.
TARGET_PER_S = 300


class Clock:
    """time.monotonic, moved on by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ring_node(peers: int, speak_version_3: bool) -> Liveness:
    """A node of a ring of PEERS + 1, on the ring and speaking; SPEAK_VERSION_3: every peer was heard in it (no
    format probes are due)."""
    node = Liveness("n00000", b"k" * 32, 7946, lambda _: None, interval=INTERVAL, topology=Topology.RING)
    node.set_peers({f"n{i:05d}": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(1, peers + 1)})
    node.mode = Mode.RING
    node.speak()
    node._sock = Socket(set())  # type: ignore[assignment]
    if speak_version_3:
        node.formats.latest = dict.fromkeys(node.peers, RING_VERSION)
    return node


def run_rounds(node: Liveness, clock: Clock, seconds: float) -> list[list[str]]:
    """Each round's datagrams (their addresses), over SECONDS of rounds, the neighbours heard every round."""
    assert node.ring is not None
    sock: Socket = node._sock  # type: ignore[assignment]
    rounds = []
    for _ in range(math.ceil(seconds / INTERVAL)):
        for name in node.ring.watch.neighbour_set:
            node.membership.peers[name].last_contact = clock.now
        before = len(sock.sent) + len(sock.format_probes)
        node._send_all(Kind.ALIVE)
        rounds.append((sock.sent + sock.format_probes)[before:])
        clock.now += INTERVAL
    return rounds


@pytest.mark.parametrize("peers", [999, 4999])
@pytest.mark.parametrize("speak_version_3", [True, False], ids=["steady", "cold-start"])
def test_a_ring_node_sends_a_flat_rate_and_probes_every_peer_once_a_cycle(
        peers: int, speak_version_3: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(sends, "time", SimpleNamespace(monotonic=clock))
    node = ring_node(peers, speak_version_3)
    cycle = probe_cycle(peers, node._probe_period(Mode.RING))
    assert cycle == peers / PROBE_BUDGET_PER_S
    rounds = run_rounds(node, clock, cycle)
    per_s = sum(map(len, rounds)) / cycle
    # Before every peer was heard in version 3, each probe takes a format probe along.
    assert per_s <= TARGET_PER_S if speak_version_3 else per_s <= TARGET_PER_S + PROBE_BUDGET_PER_S, per_s
    assert max(map(len, rounds)) <= 2 * (4 + 3)  # neighbours and a few probes, each with a format probe at most
    probed = {addr for round_sent in rounds for addr in round_sent}
    assert probed == {f"::ffff:{addr}" for addr in node.peers.values()}  # every peer, within one cycle


def test_the_cycle_is_the_probe_period_in_a_small_cluster_and_grows_with_the_peers() -> None:
    assert probe_cycle(49, 1.0) == 1.0
    assert probe_cycle(999, 1.0) == pytest.approx(9.99)
    assert probe_cycle(4999, 1.0) == pytest.approx(49.99)


@pytest.mark.parametrize("peers, rounds_per_cycle", [(49, 40.0), (999, 399.6), (4999, 1999.6)])
def test_the_rotation_probes_each_peer_once_a_cycle_a_few_a_round(peers: int, rounds_per_cycle: float) -> None:
    rotation = Rotation("n00000")
    names = [f"n{i:05d}" for i in range(1, peers + 1)]
    rotation.set_names([*names, "n00000"])
    rounds = [rotation.due(1 / rounds_per_cycle) for _ in range(math.ceil(rounds_per_cycle))]  # a cycle's rounds
    probed = [name for picked in rounds for name in picked]
    assert set(probed) == set(names) and len(probed) <= peers + 1  # each peer, once (the first again, at most)
    assert max(map(len, rounds)) <= 3


def test_the_rotation_starts_after_this_node_and_goes_on_from_its_place_when_the_peers_change() -> None:
    rotation = Rotation("n3")
    rotation.set_names(["n1", "n2", "n3", "n4", "n5"])
    assert [rotation.due(0.25) for _ in range(3)] == [["n4"], ["n5"], ["n1"]]
    rotation.set_names(["n1", "n2", "n3", "n5", "n6"])  # n4 gone, n6 new
    assert [rotation.due(0.25) for _ in range(4)] == [["n2"], ["n5"], ["n6"], ["n1"]]


def test_a_new_neighbour_is_heartbeated_every_round_until_heard(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(sends, "time", SimpleNamespace(monotonic=clock))
    node = ring_node(999, speak_version_3=True)
    assert node.ring is not None
    sock: Socket = node._sock  # type: ignore[assignment]
    neighbours = {f"::ffff:{node.peers[name]}" for name in node.ring.watch.neighbour_set}

    def next_round() -> set[str]:
        clock.now += INTERVAL
        before = len(sock.format_probes)  # every peer speaks version 3: this socket counts those apart
        node._send_all(Kind.ALIVE)
        return set(sock.format_probes[before:])

    node._send_all(Kind.ALIVE)  # the first round probes every neighbour
    for _ in range(10):  # none speaks to us yet: a large ring's probes came too seldom to keep it in contact
        assert neighbours <= next_round()
    node.ring.watch.unheard.clear()  # heard, then silent past the grace period: probed only, as on the full mesh
    clock.now += node.membership.grace
    assert neighbours <= next_round()  # a probe round
    assert not neighbours & next_round()
