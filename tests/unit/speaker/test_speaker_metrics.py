"""Speaker metrics: served before the fast plane exists, and read from it once it runs."""

from __future__ import annotations

import asyncio

from kubernetes import client
from prometheus_client import generate_latest

from ironlb.speaker.app import Speaker
from ironlb.speaker.fast.plane import FastPlane
from ironlb.speaker.metrics import registry_for
from tests.unit.speaker.test_fast_plane import fake_responders, free_port


def test_metrics_before_and_after_the_fast_plane_starts() -> None:
    speaker = Speaker("node-1", None, client.ApiClient(), b"k" * 32, 7946, [])
    registry = registry_for(lambda: speaker)
    text = generate_latest(registry).decode()
    assert "ironlb_speaker_alive_peers 0.0" in text and "ironlb_speaker_announced_ips 0.0" in text
    control = asyncio.new_event_loop()
    speaker.fast = FastPlane("node-1", b"k" * 32, free_port(), fake_responders, lambda _: None, control)
    speaker.fast.start("::1")
    try:
        text = generate_latest(registry).decode()
        assert 'ironlb_speaker_heartbeats_total{direction="sent"}' in text
    finally:
        control.run_until_complete(speaker.fast.close())
        control.close()
