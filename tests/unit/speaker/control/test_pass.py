"""The speaker's pass: the first decides every Service, the next ones only what changed, and they agree."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ironlb.speaker.control.app import Speaker
from ironlb.speaker.control.fastproc import FastProcess
from ironlb.speaker.control.status import StatusReporter
from ironlb.speaker.state.desired import Decision
from tests.unit.speaker.control.test_announcegate import page
from tests.unit.speaker.control.test_metrics import OFFLINE
from tests.unit.speaker.fast.test_plane import free_port
from tests.unit.speaker.state.test_incremental import ad, endpoint_slice, node, pool, service


class Reported(StatusReporter):
    """The real reporter's bookkeeping; what each pass gives it is recorded, and nothing is written."""

    def __init__(self) -> None:
        super().__init__(OFFLINE, "n1")
        self.passes: list[set[str]] = []

    def report(self, decisions: tuple[Decision, ...], *_: Any, **__: Any) -> None:
        self.passes.append({d.service for d in decisions})


async def test_a_pass_hands_status_the_services_that_changed_only() -> None:
    speaker = Speaker("n1", None, OFFLINE, b"k" * 32, free_port(), [])
    speaker.status = reported = Reported()
    speaker.fast = FastProcess("n1", b"k" * 32, speaker.port, lambda _: None, speaker._duplicate)
    await speaker.fast.start("::1")
    try:
        for kind, obj in [("nodes", node("n1")), ("nodes", node("n2", address=2)), ("pools", pool("p")),
                          ("advertisements", ad("ad1", ("p",))),
                          *(("services", service(f"s{i}", (f"203.0.113.{i}",))) for i in range(1, 4)),
                          *(("slices", endpoint_slice(f"s{i}-1", f"s{i}", ("n1", "n2"))) for i in range(1, 4))]:
            speaker._on_event(kind, "ADDED", obj)
        speaker.recompute()
        speaker._on_event("slices", "MODIFIED", endpoint_slice("s2-1", "s2", ("n2",)))
        speaker.recompute()
        speaker._on_event("services", "MODIFIED", service("s3", ("203.0.113.9",)))
        speaker.recompute()
        assert reported.passes == [{"ns/s1", "ns/s2", "ns/s3"}, {"ns/s2"}, {"ns/s3"}]
        alive = speaker.fast.alive
        expected = speaker.view.table.desired(alive)
        assert speaker.followed.decisions_of(sorted(speaker.followed.decisions)) == expected.decisions
        assert speaker.followed.announced == expected.announcements
        speaker.mark_dirty()  # interfaces changed, say: every Service again
        speaker.recompute()
        assert reported.passes[-1] == {"ns/s1", "ns/s2", "ns/s3"}
    finally:
        await speaker.fast.close()


async def test_a_new_service_is_claimed_once_kube_proxy_has_synced_it(metrics_server: tuple[str, list[str]]) -> None:
    url, text = metrics_server
    text[0] = page(time.time() - 60, time.time() - 59)
    speaker = Speaker("n1", None, OFFLINE, b"k" * 32, free_port(), [], kube_proxy_metrics_url=url,
                      announce_wait=3.0)
    speaker.status = Reported()
    speaker.fast = FastProcess("n1", b"k" * 32, speaker.port, lambda _: None, speaker._duplicate)
    await speaker.fast.start("::1")
    try:
        for kind, obj in [("nodes", node("n1")), ("pools", pool("p")), ("advertisements", ad("ad1", ("p",))),
                          ("services", service("s1", ("203.0.113.1",))),
                          ("slices", endpoint_slice("s1-1", "s1", ("n1",)))]:
            speaker._on_event(kind, "ADDED", obj)
        speaker.recompute()  # listed before the speaker joined: no change to wait for
        speaker.gate.armed = True
        for kind, obj in [("services", service("s2", ("203.0.113.2",))),
                          ("slices", endpoint_slice("s2-1", "s2", ("n1",)))]:
            speaker._on_event(kind, "ADDED", obj)
        speaker._dirty.clear()
        speaker.recompute()
        assert set(speaker.fast._sent) == {"203.0.113.1"} and set(speaker.gate.held) == {"ns/s2"}
        text[0] = page(time.time(), time.time() + 0.01)
        await asyncio.wait_for(speaker._dirty.wait(), 2)  # the gate wakes the speaker
        speaker.recompute()
        assert set(speaker.fast._sent) == {"203.0.113.1", "203.0.113.2"} and not speaker.gate.held
    finally:
        await speaker.gate.close()
        await speaker.fast.close()
