"""Mixed versions: a peer speaking today's format (version 2) is never left without heartbeats."""

from __future__ import annotations

from ironlb.speaker.fast.liveness.protocol import RING_VERSION, VERSION, Heartbeat, Kind
from ironlb.speaker.fast.liveness.ring import K, Ring
from ironlb.speaker.fast.liveness.upgrade import Formats, Mode, join_wait, targets

NAMES = [f"n{i}" for i in range(8)]
RING = Ring(NAMES)
PEERS = NAMES[1:]


def heard(formats: Formats, name: str, version: int, incarnation: int = 1) -> None:
    """A datagram of NAME's run INCARNATION in VERSION."""
    formats.heard(Heartbeat(Kind.ALIVE, name, incarnation, 1, 0, digest=None if version == VERSION else 0))


def round_targets(formats: Formats) -> frozenset[str]:
    """Whom n0 heartbeats this interval."""
    return targets(formats.mode(PEERS, K), "n0", PEERS, RING, lambda _: False)


def test_one_old_peer_keeps_every_node_on_the_full_mesh_in_its_format() -> None:
    formats = Formats()
    for name in PEERS:
        heard(formats, name, RING_VERSION)
    heard(formats, "n5", VERSION, incarnation=2)  # n5 was replaced by an old speaker
    assert formats.mode(PEERS, K) is Mode.FULL_MESH
    assert round_targets(formats) == set(PEERS)  # n5 among them, every interval
    assert formats.version_for("n5") == VERSION and formats.version_for("n1") == RING_VERSION
    assert formats.to_probe(PEERS) == ["n5"]


def test_once_the_last_old_peer_speaks_version_3_heartbeats_go_to_the_ring_neighbours_only() -> None:
    formats = Formats()
    for name in PEERS:
        heard(formats, name, RING_VERSION)
    assert formats.mode(PEERS, K) is Mode.RING
    assert round_targets(formats) == RING.neighbours("n0") and len(round_targets(formats)) == 2 * K


def test_a_rollback_to_version_2_puts_everyone_back_on_the_full_mesh() -> None:
    formats = Formats()
    for name in PEERS:
        heard(formats, name, RING_VERSION)
    far = sorted(set(PEERS) - RING.neighbours("n0"))[0]  # a node we do not heartbeat in the ring
    heard(formats, far, VERSION, incarnation=2)  # it restarted with the old version: it heartbeats everyone
    assert formats.mode(PEERS, K) is Mode.FULL_MESH and far in round_targets(formats)


def test_version_2_from_a_run_heard_in_version_3_is_no_rollback() -> None:
    formats = Formats()
    heard(formats, "n1", RING_VERSION)
    heard(formats, "n1", VERSION)  # sent before it heard us in version 3: the same run still reads it
    assert formats.version_for("n1") == RING_VERSION
    heard(formats, "n1", VERSION, incarnation=2)
    assert formats.version_for("n1") == VERSION


def test_a_peer_not_heard_yet_counts_as_old() -> None:
    formats = Formats()
    for name in PEERS[:-1]:
        heard(formats, name, RING_VERSION)
    assert formats.mode(PEERS, K) is Mode.FULL_MESH and formats.version_for(PEERS[-1]) == VERSION


def test_small_clusters_stay_on_the_full_mesh_whatever_they_speak() -> None:
    formats = Formats()
    for name in ("n1", "n2"):
        heard(formats, name, RING_VERSION)
    assert formats.mode(["n1", "n2"], K) is Mode.FULL_MESH
    formats.forget(["n2"])
    assert formats.version_for("n2") == VERSION


def test_a_joiner_waits_one_detection_period_on_the_full_mesh_and_a_notices_way_more_on_the_ring() -> None:
    mesh = join_wait(Mode.FULL_MESH, timeout=0.15, interval=0.025)
    assert mesh == 0.15 + 0.025  # what every speaker waited before the ring: small clusters are unchanged
    assert join_wait(Mode.RING, timeout=0.15, interval=0.025) > mesh + 0.025
