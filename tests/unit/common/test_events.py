"""The shared Event recorder: client-go's correlation (aggregate, combine, spam filter) over a fake sink and clock."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from ironlb.api.reasons import AllocationReason, ConfigReason, EventReason
from ironlb.common.correlator import COMBINED_PREFIX, MAX_MESSAGE, Correlator, EventKey, Outcome, TokenBucket
from ironlb.common.events import Budget, EventNotFound, EventRecorder, ObjectRef
from tests.unit.fakeclock import FakeClock

SVC = ObjectRef("v1", "Service", "web", "default", "uid-1")
POOL = ObjectRef("ironlb.io/v1beta1", "IPAddressPool", "pool-a", None, "uid-2")


class RecordingSink:
    """Keeps Event objects as an API server would; can be told to fail or to lose Events."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.fail = False
        self.gate: threading.Event | None = None
        self._lock = threading.Lock()

    def create(self, namespace: str, body: dict[str, Any]) -> None:
        self._call("create", namespace, body["metadata"]["name"])
        with self._lock:
            assert (namespace, body["metadata"]["name"]) not in self.events, "created twice"
            self.events[(namespace, body["metadata"]["name"])] = dict(body)

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        self._call("patch", namespace, name)
        with self._lock:
            if (namespace, name) not in self.events:
                raise EventNotFound(name)
            assert set(body) <= {"count", "lastTimestamp", "message"}
            self.events[(namespace, name)].update(body)

    def _call(self, verb: str, namespace: str, name: str) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        self.calls.append((verb, namespace, name))
        if self.fail:
            raise RuntimeError("API down")

    def objects(self, reason: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events.values() if reason is None or e["reason"] == reason]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def recorder(sink: RecordingSink, clock: FakeClock) -> EventRecorder:
    rec = EventRecorder(sink, "ironlb-speaker", "node-1", clock=clock)
    yield rec
    rec.close()


async def test_the_same_event_becomes_one_object_with_a_count(recorder: EventRecorder, sink: RecordingSink,
                                                            clock: FakeClock) -> None:
    for _ in range(5):
        await recorder.record(SVC, EventReason.NODE_ASSIGNED, "203.0.113.10 from node-1")
        clock.now += 1
    [event] = sink.objects()
    assert event["count"] == 5 and event["type"] == "Normal" and event["reason"] == "NodeAssigned"
    assert event["involvedObject"] == {"apiVersion": "v1", "kind": "Service", "name": "web", "namespace": "default",
                                       "uid": "uid-1"}
    assert event["source"] == {"component": "ironlb-speaker", "host": "node-1"}
    assert event["metadata"]["name"].startswith("web.")
    assert [c[0] for c in sink.calls] == ["create"] + ["patch"] * 4
    assert recorder.stats() == {"emitted": 1, "aggregated": 4, "combined": 0, "dropped": 0, "throttled": 0,
                                "failed": 0}


async def test_type_and_reason_and_message_each_make_a_different_event(recorder: EventRecorder,
                                                                      sink: RecordingSink) -> None:
    await recorder.record(SVC, EventReason.NODE_ASSIGNED, "a")
    await recorder.record(SVC, EventReason.NODE_ASSIGNED, "a", warning=True)
    await recorder.record(SVC, EventReason.NOT_ANNOUNCED, "a")
    await recorder.record(SVC, EventReason.NODE_ASSIGNED, "b")
    await recorder.record(ObjectRef("v1", "Service", "web", "default", "uid-new"), EventReason.NODE_ASSIGNED, "a")
    assert len(sink.objects()) == 5


async def test_the_detail_is_an_annotation_and_part_of_the_events_identity(recorder: EventRecorder,
                                                                         sink: RecordingSink) -> None:
    """AllocationFailed carries the allocator's reason in ironlb.io/reason: a repeat is counted on its Event, and
    similar messages of different reasons never combine into one Event (whose annotation would be wrong)."""
    full, held = AllocationReason.POOL_EXHAUSTED, AllocationReason.REQUESTED_IP_HELD
    for i in range(12):  # past the similar-messages limit, for this reason only
        await recorder.record(SVC, EventReason.ALLOCATION_FAILED, f"held {i}", warning=True, detail=held)
        if i == 8:  # one distinct message short of that limit
            for _ in range(2):
                await recorder.record(SVC, EventReason.ALLOCATION_FAILED, "no free address", warning=True, detail=full)
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for event in sink.objects("AllocationFailed"):
        by_reason.setdefault(event["metadata"]["annotations"]["ironlb.io/reason"], []).append(event)
    assert [e["count"] for e in by_reason["PoolExhausted"]] == [2]
    assert any(e["message"].startswith(COMBINED_PREFIX) for e in by_reason["RequestedIPHeld"])
    await recorder.record(SVC, EventReason.NODE_ASSIGNED, "a")
    assert "annotations" not in sink.objects("NodeAssigned")[0]["metadata"]  # no detail, no annotation


async def test_similar_events_beyond_ten_are_combined(recorder: EventRecorder, sink: RecordingSink,
                                                     clock: FakeClock) -> None:
    for i in range(20):  # under the burst of 25: the spam filter stays out of this
        await recorder.record(SVC, EventReason.DUPLICATE_ANSWER, f"another host (02:00:00:00:00:{i:02x}) answers",
                              warning=True)
        clock.now += 1
    events = sink.objects("DuplicateAnswer")
    combined = [e for e in events if e["message"].startswith(COMBINED_PREFIX)]
    assert len(events) == 10 and len(combined) == 1  # 9 distinct messages, then one combined Event
    assert combined[0]["count"] == 11
    assert combined[0]["message"] == COMBINED_PREFIX + "another host (02:00:00:00:00:13) answers"  # the newest
    assert recorder.stats()["combined"] == 11 and recorder.stats()["emitted"] == 9


async def test_similar_events_are_not_combined_once_the_window_has_passed(recorder: EventRecorder,
                                                                         sink: RecordingSink,
                                                                         clock: FakeClock) -> None:
    for i in range(9):
        await recorder.record(SVC, EventReason.IP_ALLOCATED, f"message {i}")
    clock.now += 601
    await recorder.record(SVC, EventReason.IP_ALLOCATED, "message 9")
    assert not any(e["message"].startswith(COMBINED_PREFIX) for e in sink.objects())


async def test_a_source_gets_a_burst_of_25_writes_per_object_then_one_per_five_minutes(
        recorder: EventRecorder, sink: RecordingSink, clock: FakeClock) -> None:
    for _ in range(10_000):
        await recorder.record(SVC, EventReason.DUPLICATE_ANSWER, "another host answers", warning=True)
    assert len(sink.calls) == 25
    assert recorder.stats()["dropped"] == 10_000 - 25
    # Another object has its own bucket; the flooded one refills one token per 300 s.
    await recorder.record(POOL, ConfigReason.INVALID_SPEC, "bad")
    clock.now += 299
    await recorder.record(SVC, EventReason.DUPLICATE_ANSWER, "another host answers", warning=True)
    assert len(sink.calls) == 26
    clock.now += 2
    await recorder.record(SVC, EventReason.DUPLICATE_ANSWER, "another host answers", warning=True)
    assert len(sink.calls) == 27
    [event] = sink.objects("DuplicateAnswer")
    assert event["count"] == 10_002  # the dropped ones are counted in the next write that passes


async def test_a_reasons_budget_bounds_its_writes_over_every_object(sink: RecordingSink, clock: FakeClock) -> None:
    """Claims on every Service at once: the budget caps the writes of all of them together; other reasons and
    the counts are untouched, and the next write that passes carries the true count."""
    rec = EventRecorder(sink, "c", "i", clock=clock, burst=100,  # the per-object limit stays out of this
                        budgets={EventReason.DUPLICATE_ANSWER: Budget(burst=5, refill_s=60.0)})
    refs = [ObjectRef("v1", "Service", f"s{i}", "default", f"u{i}") for i in range(200)]
    for _ in range(25):
        for ref in refs:
            await rec.record(ref, EventReason.DUPLICATE_ANSWER, "another host answers", warning=True)
    assert len(sink.calls) == 5
    stats = rec.stats()
    assert stats["throttled"] == 200 * 25 - 5 and sum(stats.values()) == 200 * 25  # every one accounted for
    await rec.record(refs[0], EventReason.NODE_ASSIGNED, "m")  # another reason on the same object: its own limits only
    assert len(sink.calls) == 6
    clock.now += 60  # one token back, for any object: it carries that object's whole count
    await rec.record(refs[0], EventReason.DUPLICATE_ANSWER, "another host answers", warning=True)
    assert len(sink.calls) == 7 and sink.objects("DuplicateAnswer")[0]["count"] == 26
    rec.close()


async def test_a_budgeted_write_merged_into_a_queued_one_costs_nothing(sink: RecordingSink, clock: FakeClock) -> None:
    rec = EventRecorder(sink, "c", "i", clock=clock,
                        budgets={EventReason.DUPLICATE_ANSWER: Budget(burst=2, refill_s=60.0)})
    sink.gate = threading.Event()
    futures = [rec.submit(SVC, EventReason.DUPLICATE_ANSWER, "x", warning=True) for _ in range(20)]
    sink.gate.set()
    await asyncio.gather(*(asyncio.wrap_future(f) for f in futures if f is not None))
    assert rec.stats()["throttled"] == 0 and sink.objects()[0]["count"] == 20
    rec.close()


async def test_pending_writes_for_one_event_are_merged(recorder: EventRecorder, sink: RecordingSink) -> None:
    sink.gate = threading.Event()  # the API is slow: everything below queues behind the first write
    futures = [recorder.submit(SVC, EventReason.DUPLICATE_ANSWER, "x", warning=True) for _ in range(20)]
    sink.gate.set()
    await asyncio.gather(*(asyncio.wrap_future(f) for f in futures if f is not None))
    assert len(sink.calls) <= 3  # the first create, then one patch carrying the newest count
    assert sink.objects()[0]["count"] == 20
    assert sum(recorder.stats().values()) == 20


async def test_cluster_scoped_objects_get_events_in_default(recorder: EventRecorder, sink: RecordingSink) -> None:
    await recorder.record(POOL, ConfigReason.INVALID_SPEC, "x" * 5000, warning=True)
    [(namespace, _)] = sink.events
    event = sink.objects()[0]
    assert namespace == "default" and "namespace" not in event["involvedObject"]
    assert len(event["message"]) == 1024 and event["type"] == "Warning"


async def test_an_expired_event_is_created_again_with_its_count(recorder: EventRecorder, sink: RecordingSink) -> None:
    await recorder.record(SVC, EventReason.NODE_ASSIGNED, "m")
    sink.events.clear()  # Events expire (the API server's event TTL)
    await recorder.record(SVC, EventReason.NODE_ASSIGNED, "m")
    assert [c[0] for c in sink.calls] == ["create", "patch", "create"]
    assert sink.objects()[0]["count"] == 2
    assert recorder.stats()["failed"] == 0


async def test_api_failures_are_counted_never_raised(recorder: EventRecorder, sink: RecordingSink) -> None:
    sink.fail = True
    await recorder.record(SVC, EventReason.NODE_ASSIGNED, "m")
    assert recorder.stats()["failed"] == 1
    sink.fail = False
    await recorder.record(SVC, EventReason.NODE_ASSIGNED, "m")  # the failed create is retried as a create
    assert sink.objects()[0]["count"] == 2


async def test_a_stuck_api_bounds_the_queue(sink: RecordingSink, clock: FakeClock) -> None:
    rec = EventRecorder(sink, "c", "i", clock=clock, max_pending=5)
    sink.gate = threading.Event()
    futures = [rec.submit(ObjectRef("v1", "Service", f"s{i}", "default", None), EventReason.IP_ALLOCATED, "m")
               for i in range(20)]
    assert sum(f is None for f in futures) >= 14  # one may be in flight, five queued: the rest are refused
    sink.gate.set()
    rec.close()
    assert rec.stats()["failed"] >= 14 and sum(rec.stats().values()) == 20


async def test_cache_eviction_forgets_the_oldest_objects(sink: RecordingSink, clock: FakeClock) -> None:
    rec = EventRecorder(sink, "c", "i", clock=clock, cache_size=2)
    a, b, c = (ObjectRef("v1", "Service", n, "default", None) for n in "abc")
    for ref in (a, b, c):
        await rec.record(ref, EventReason.IP_ALLOCATED, "m")
    await rec.record(a, EventReason.IP_ALLOCATED, "m")  # a was evicted: a new Event object, not a patch
    assert len(sink.objects()) == 4
    await rec.record(c, EventReason.IP_ALLOCATED, "m")  # c is still cached: patched
    assert len(sink.objects()) == 4 and rec.stats()["aggregated"] == 1
    rec.close()


def test_threads_recording_at_once_lose_nothing(sink: RecordingSink, clock: FakeClock) -> None:
    rec = EventRecorder(sink, "c", "i", clock=clock, burst=100_000)
    refs = [ObjectRef("v1", "Service", f"s{i}", "default", None) for i in range(4)]

    def work(ref: ObjectRef) -> None:
        futures = [rec.submit(ref, EventReason.IP_ALLOCATED, "m") for _ in range(500)]
        for f in futures:
            if f is not None:
                f.result(10)

    threads = [threading.Thread(target=work, args=(ref,)) for ref in refs for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rec.close()
    assert sorted(e["count"] for e in sink.objects()) == [1000] * 4
    stats = rec.stats()
    assert stats["emitted"] == 4 and stats["aggregated"] == 3996 and stats["failed"] == 0


def test_record_from_a_thread_with_its_own_loop(sink: RecordingSink, clock: FakeClock) -> None:
    rec = EventRecorder(sink, "c", "i", clock=clock)
    thread = threading.Thread(target=lambda: asyncio.run(rec.record(SVC, EventReason.IP_ALLOCATED, "from a thread")))
    thread.start()
    thread.join(10)
    assert sink.objects()[0]["message"] == "from a thread"
    rec.close()


def test_token_bucket_refills_continuously_up_to_its_burst() -> None:
    bucket = TokenBucket(2, 10.0, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.0)
    assert not bucket.take(9.9) and bucket.take(10.0)
    assert bucket.take(1000.0) and bucket.take(1000.0) and not bucket.take(1000.0)  # never above the burst


def test_correlator_outcomes_are_named() -> None:
    correlator = Correlator(burst=2)
    key = EventKey("src", ("v1", "Service", "default", "web", ""), "Normal", "R")
    outcomes = [correlator.observe(key, "web", "m", now=0.0).outcome for _ in range(3)]
    assert outcomes == [Outcome.EMITTED, Outcome.AGGREGATED, Outcome.DROPPED]


async def test_messages_are_escaped_and_bounded(recorder: EventRecorder, sink: RecordingSink) -> None:
    hostile = "pool \x1b[2J\x1b[31mevil\r\n\u202e" + "z" * 5000  # user text, e.g. an annotation value
    await recorder.record(SVC, EventReason.ALLOCATION_FAILED, hostile, warning=True)
    [event] = sink.objects()
    assert event["message"].startswith("pool \\x1b[2J\\x1b[31mevil\\x0d\\x0a\\u202ezzz")
    assert len(event["message"]) <= MAX_MESSAGE and event["message"].isprintable()
