"""Speaker metrics: served before the fast plane exists, and read from its reports once it runs."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import generate_latest

from ironlb.api.reasons import AnnounceReason
from ironlb.common.kubeapi import Client, ClusterConfig
from ironlb.speaker.control.app import Speaker
from ironlb.speaker.control.fastproc import FastProcess, Heard
from ironlb.speaker.control.metrics import registry_for
from ironlb.speaker.control.steer import SteeringSettings
from ironlb.speaker.control.steer.steerer import Steerer
from ironlb.speaker.fast.l2.responder import Stats
from ironlb.speaker.fast.messages import FastStats, Refusal
from ironlb.speaker.state.desired import Decision
from tests.unit.speaker.fast.test_plane import free_port

OFFLINE = Client(ClusterConfig("http", "127.0.0.1", 9))  # never asked: these tests make no API call


async def test_metrics_before_and_after_the_fast_plane_starts() -> None:
    speaker = Speaker("node-1", None, OFFLINE, b"k" * 32, 7946, [])
    registry = registry_for(lambda: speaker)
    text = generate_latest(registry).decode()
    assert "ironlb_speaker_alive_peers 0.0" in text and "ironlb_speaker_announced_ips 0.0" in text
    speaker.fast = FastProcess("node-1", b"k" * 32, free_port(), lambda _: None, speaker._duplicate)
    await speaker.fast.start("::1")
    try:
        await speaker.fast.join()
        text = generate_latest(registry).decode()
        assert 'ironlb_speaker_heartbeats_total{direction="sent"}' in text
        assert 'ironlb_speaker_heartbeat_datagrams_total{direction="received"}' in text
        assert "ironlb_speaker_alive_peers 1.0" in text  # itself, as the fast plane reported
        assert "ironlb_speaker_fast_plane_resident_bytes" in text
        assert "ironlb_speaker_heartbeat_source_filter 1.0" in text  # the kernel drops non-peers' datagrams
        assert "ironlb_speaker_heartbeat_source_filter_failures_total 0.0" in text
    finally:
        await speaker.fast.close()


def test_refused_filters_frames_and_throttled_events_are_exported() -> None:
    stats = FastStats(responders={"eth0": Stats(filter_failures=2)}, channel_refused={Refusal.GARBLED: 3})
    fast = SimpleNamespace(stats=stats, alive=frozenset({"node-1"}), announcements=lambda: {},
                           refused=lambda: {Refusal.UNHANDLED: 1}, membership=Heard())
    events = SimpleNamespace(stats=lambda: {"emitted": 1, "throttled": 7})
    speaker = SimpleNamespace(fast=fast, duplicates={}, status=SimpleNamespace(events=events), forwarding=None,
                              health=SimpleNamespace(failing=set()), nftables=SimpleNamespace(last_error=None),
                              steerer=Steerer(SteeringSettings(), lambda: None))
    text = generate_latest(registry_for(lambda: speaker)).decode()
    assert 'ironlb_speaker_filter_failures_total{interface="eth0"} 2.0' in text
    assert 'ironlb_speaker_events_total{outcome="throttled"} 7.0' in text
    assert 'ironlb_speaker_channel_refused_total{process="fast",reason="garbled"} 3.0' in text
    assert 'ironlb_speaker_channel_refused_total{process="control",reason="unhandled"} 1.0' in text


def test_unannounced_ips_by_reason_every_series_present() -> None:
    speaker = Speaker("node-1", None, OFFLINE, b"k" * 32, 7946, [])
    registry = registry_for(lambda: speaker)
    assert 'ironlb_speaker_unannounced_ips{reason="NotInPool"} 0.0' in generate_latest(registry).decode()
    speaker.followed.reasons.update(d.reason for d in (
        Decision("ns/a", "192.0.2.254", AnnounceReason.NOT_IN_POOL),
        Decision("ns/b", "203.0.113.1", AnnounceReason.ANNOUNCED_BY_PEER, "n2"),
        Decision("ns/c", "203.0.113.2", AnnounceReason.NOT_IN_POOL)))
    text = generate_latest(registry).decode()
    assert 'ironlb_speaker_unannounced_ips{reason="NotInPool"} 2.0' in text
    assert 'ironlb_speaker_unannounced_ips{reason="NoL2Advertisement"} 0.0' in text
    assert 'reason="AnnouncedByPeer"' not in text
