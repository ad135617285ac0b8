"""Mixed versions: a peer speaking today's format (version 2) is never left without heartbeats."""

from __future__ import annotations

from ironlb.speaker.fast.liveness.protocol import RING_VERSION, VERSION, Heartbeat, Kind
from ironlb.speaker.fast.liveness.ring import K, Ring
from ironlb.speaker.fast.liveness.upgrade import Formats, Mode, join_wait, targets

NAMES = [f"n{i}" for i in range(8)]
RING = Ring(NAMES)
PEERS = NAMES[1:]


def heard(formats: Formats, name: str, version: int, incarnation: int = 1, now: float = 0.0) -> bool:
    """A datagram of NAME's run INCARNATION in VERSION; whether to tell it we speak version 3."""
    return formats.heard(Heartbeat(Kind.ALIVE, name, incarnation, 1, 0, digest=None if version == VERSION else 0),
                         now)


def old_speaker(formats: Formats, name: str, incarnation: int = 1) -> None:
    """NAME's run INCARNATION speaks version 2, told that we speak version 3, and still after that."""
    assert heard(formats, name, VERSION, incarnation)
    formats.sent_version_3(name, incarnation, 1.0)
    assert not heard(formats, name, VERSION, incarnation, now=1.0 + 2 * formats.settle)


def mode(formats: Formats, up: list[str] = PEERS) -> Mode:
    """n0's mode with the peers UP up (and the others down)."""
    return formats.mode(len(up), lambda name: name in up, K)


def round_targets(formats: Formats) -> frozenset[str]:
    """Whom n0 heartbeats this interval."""
    return targets(mode(formats), "n0", PEERS, RING, lambda _: False)


def test_one_old_peer_keeps_every_node_on_the_full_mesh_in_its_format() -> None:
    formats = Formats()
    for name in PEERS:
        heard(formats, name, RING_VERSION)
    old_speaker(formats, "n5", incarnation=2)  # n5 was replaced by an old speaker
    assert mode(formats) is Mode.FULL_MESH
    assert round_targets(formats) == set(PEERS)  # n5 among them, every interval
    assert formats.version_for("n5") == VERSION and formats.version_for("n1") == RING_VERSION
    assert formats.to_probe(PEERS) == ["n5"]


def test_once_the_last_old_peer_speaks_version_3_heartbeats_go_to_the_ring_neighbours_only() -> None:
    formats = Formats()
    for name in PEERS:
        heard(formats, name, RING_VERSION)
    assert mode(formats) is Mode.RING
    assert round_targets(formats) == RING.neighbours("n0") and len(round_targets(formats)) == 2 * K


def test_a_rollback_to_version_2_puts_everyone_back_on_the_full_mesh() -> None:
    formats = Formats()
    for name in PEERS:
        heard(formats, name, RING_VERSION)
    far = sorted(set(PEERS) - RING.neighbours("n0"))[0]  # a node we do not heartbeat in the ring
    old_speaker(formats, far, incarnation=2)  # it restarted with the old version: it heartbeats everyone
    assert mode(formats) is Mode.FULL_MESH and far in round_targets(formats)


def test_version_2_from_a_run_heard_in_version_3_is_no_rollback() -> None:
    formats = Formats()
    heard(formats, "n1", RING_VERSION)
    heard(formats, "n1", VERSION)  # sent before it heard us in version 3: the same run still reads it
    assert formats.version_for("n1") == RING_VERSION
    heard(formats, "n1", VERSION, incarnation=2)
    assert formats.version_for("n1") == VERSION


def test_a_peer_not_heard_yet_holds_nothing_back_and_is_sent_version_2() -> None:
    formats = Formats()
    for name in PEERS[:-1]:
        heard(formats, name, RING_VERSION)
    assert mode(formats) is Mode.RING and formats.version_for(PEERS[-1]) == VERSION
    old_speaker(formats, PEERS[-1])  # the probes found an old speaker
    assert mode(formats) is Mode.FULL_MESH


def test_a_new_speaker_heard_in_version_2_is_told_once_and_holds_nothing_back() -> None:
    formats = Formats()
    for name in PEERS[:-1]:
        heard(formats, name, RING_VERSION)
    new = PEERS[-1]
    assert heard(formats, new, VERSION)  # it has not heard version 3 from us yet: tell it
    formats.sent_version_3(new, 1, 1.0)
    assert not heard(formats, new, VERSION, now=1.0)  # sent before it was told: not old
    assert mode(formats) is Mode.RING
    assert not heard(formats, new, RING_VERSION, now=1.01) and mode(formats) is Mode.RING
    assert heard(formats, new, VERSION, incarnation=2, now=2.0)  # its next run is told again


def test_an_old_speaker_that_is_down_holds_nothing_back() -> None:
    formats = Formats()
    for name in PEERS:
        heard(formats, name, RING_VERSION)
    old_speaker(formats, "n3", incarnation=2)
    assert mode(formats) is Mode.FULL_MESH
    assert mode(formats, [name for name in PEERS if name != "n3"]) is Mode.RING
    heard(formats, "n3", RING_VERSION, incarnation=3)  # replaced by a new speaker
    assert mode(formats) is Mode.RING and not formats.old


def test_small_clusters_stay_on_the_full_mesh_whatever_they_speak() -> None:
    formats = Formats()
    for name in ("n1", "n2"):
        heard(formats, name, RING_VERSION)
    assert mode(formats, ["n1", "n2"]) is Mode.FULL_MESH
    formats.forget(["n2"])
    assert formats.version_for("n2") == VERSION


def test_a_joiner_waits_one_detection_period_on_the_full_mesh_and_a_notices_way_more_on_the_ring() -> None:
    mesh = join_wait(Mode.FULL_MESH, timeout=0.15, interval=0.025)
    assert mesh == 0.15 + 0.025  # what every speaker waited before the ring: small clusters are unchanged
    assert join_wait(Mode.RING, timeout=0.15, interval=0.025) > mesh + 0.025


def unproven(formats: Formats, name: str, version: int, incarnation: int) -> None:
    """A datagram of NAME's run INCARNATION in VERSION that does not echo our run (not accepted yet)."""
    formats.unproven(Heartbeat(Kind.ALIVE, name, incarnation, 1, 0, digest=None if version == VERSION else 0))


# (what we heard of n5 before, then its unproven datagram (version, run)) -> the format n5 is sent then
ROLLBACKS: dict[str, tuple[list[tuple[int, int]], tuple[int, int], int]] = {
    "a run heard in version 3 replaced by one speaking version 2 (a rollback) is sent version 2": (
        [(RING_VERSION, 1)], (VERSION, 2), VERSION),
    "the same run's version 2 before it heard ours is no rollback": (
        [(RING_VERSION, 1)], (VERSION, 1), RING_VERSION),
    "a new run speaking version 3 keeps version 3": (
        [(RING_VERSION, 1)], (RING_VERSION, 2), RING_VERSION),
    "a peer never heard in version 3 stays on version 2": (
        [(VERSION, 1)], (VERSION, 2), VERSION),
}


def test_a_rollback_is_sent_version_2_before_it_can_prove_its_run() -> None:
    for name, (before, (version, run), sent) in ROLLBACKS.items():
        formats = Formats()
        for heard_version, heard_run in before:
            heard(formats, "n5", heard_version, heard_run)
        unproven(formats, "n5", version, run)
        assert formats.version_for("n5") == sent, name


def test_a_rolled_back_run_heard_in_version_3_after_all_is_sent_version_3_again() -> None:
    formats = Formats()
    heard(formats, "n5", RING_VERSION, 1)
    unproven(formats, "n5", VERSION, 2)  # a recording of another run, or a restart still sending version 2
    heard(formats, "n5", RING_VERSION, 1)  # its run speaks version 3: back at once
    assert formats.version_for("n5") == RING_VERSION and mode(formats) is Mode.RING
