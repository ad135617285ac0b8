"""Event correlation as Kubernetes' client-go does it (tools/record EventCorrelator), as pure logic.

Three stages, in client-go's order, for every Event a component wants to record:

1. **aggregation**: Events on one object with the same type and reason but different messages
   are "similar"; once more than `max_similar` distinct messages are seen within
   `similar_window_s`, further ones fold into one "(combined from similar events): ..." Event;
2. **de-duplication**: an Event identical to one already written (same object, type, reason,
   message) patches that Event's count and lastTimestamp instead of creating another object;
3. **spam filter**: a token bucket per (source, object) (burst 25, one token per 5 minutes)
   drops what is left over. The count in the de-duplication cache is bumped even for dropped
   Events, so the next write that passes carries the true count.

No I/O and no clock of its own: the caller passes `now` (monotonic seconds), so it is tested
with a fake clock. Not thread-safe by itself; the recorder holds a lock around it.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from ironlb.core.text import printable

COMBINED_PREFIX = "(combined from similar events): "
MAX_MESSAGE = 1024
K = TypeVar("K")
V = TypeVar("V")


class Outcome(Enum):
    """What becomes of one recorded Event."""

    EMITTED = "emitted"        # a new Event object
    AGGREGATED = "aggregated"  # the count of an Event already written is patched
    COMBINED = "combined"      # folded into the "(combined from similar events)" Event of its reason
    DROPPED = "dropped"        # the spam filter (source + object) had no token left
    THROTTLED = "throttled"    # the recorder's process-wide budget for the reason had no token left


@dataclass(frozen=True)
class EventKey:
    """Who says what about which object: the identity of an Event, message excluded."""

    source: str
    object: tuple[str, ...]  # (api_version, kind, namespace, name, uid)
    type: str
    reason: str
    detail: str = ""  # the specific reason under `reason` (the Event's ironlb.io/reason annotation), if any


@dataclass(frozen=True)
class Correlation:
    """The correlator's decision: what to write (nothing if DROPPED)."""

    outcome: Outcome
    name: str = ""        # the Event object's name
    create: bool = False  # create it (first occurrence) rather than patch its count
    message: str = ""
    count: int = 0
    first_seen: float = 0.0  # monotonic time of the first occurrence counted in `count`


class LRU(Generic[K, V]):
    """A bounded mapping that forgets the least recently used key."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value, marking it used; None if absent."""
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Insert or replace, evicting the oldest entry past the size."""
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class TokenBucket:
    """`burst` tokens, refilled continuously at one per `refill_s` seconds (client-go's flowcontrol)."""

    def __init__(self, burst: int, refill_s: float, now: float) -> None:
        self.burst, self.refill_s = burst, refill_s
        self.tokens, self.last = float(burst), now

    def take(self, now: float) -> bool:
        """Take a token if one is left."""
        if now > self.last:
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) / self.refill_s)
            self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _Similar:
    messages: dict[str, None]  # an ordered set of the distinct messages seen
    last: float


@dataclass
class _Written:
    name: str
    count: int
    first_seen: float


_serial = itertools.count()


def default_name(object_name: str) -> str:
    """A unique Event name for an object (client-go uses `<name>.<unix nanos in hex>`)."""
    return f"{object_name}.{time.time_ns():x}{next(_serial) % 0x1000:03x}"


class Correlator:
    """Aggregates, de-duplicates and rate-limits Events; each `observe()` returns what to write."""

    def __init__(self, *, burst: int = 25, refill_s: float = 300.0, cache_size: int = 4096,
                 max_similar: int = 10, similar_window_s: float = 600.0,
                 new_name: Callable[[str], str] = default_name) -> None:
        self.burst, self.refill_s = burst, refill_s
        self.max_similar, self.similar_window_s = max_similar, similar_window_s
        self.new_name = new_name
        self._similar: LRU[EventKey, _Similar] = LRU(cache_size)
        self._written: LRU[tuple[EventKey, str | None], _Written] = LRU(cache_size)
        self._buckets: LRU[tuple[str, tuple[str, ...]], TokenBucket] = LRU(cache_size)

    def observe(self, key: EventKey, object_name: str, message: str, now: float) -> Correlation:
        """Correlate one occurrence of an Event (MESSAGE under KEY) at monotonic time NOW."""
        # Messages carry user text (annotation values) and are printed on terminals: escaped, then bounded.
        message = printable(message, MAX_MESSAGE)
        combined = self._aggregate(key, message, now)
        # Identical Events share one object; all combined ones of a key share theirs (message None).
        cache_key = (key, None if combined else message)
        if combined:
            message = (COMBINED_PREFIX + message)[:MAX_MESSAGE]
        written = self._written.get(cache_key)
        create = written is None
        if written is None:
            written = _Written(self.new_name(object_name), 0, now)
        written.count += 1
        self._written.put(cache_key, written)
        if not self._allow(key, now):
            return Correlation(Outcome.DROPPED)
        outcome = Outcome.COMBINED if combined else Outcome.EMITTED if create else Outcome.AGGREGATED
        return Correlation(outcome, written.name, create, message, written.count, written.first_seen)

    def _aggregate(self, key: EventKey, message: str, now: float) -> bool:
        """True when MESSAGE is one too many distinct messages for KEY in the window: combine it."""
        record = self._similar.get(key)
        if record is None or now - record.last > self.similar_window_s:
            record = _Similar({}, now)
        record.messages[message] = None
        record.last = now
        self._similar.put(key, record)
        if len(record.messages) < self.max_similar:
            return False
        # Keep the set from growing past the limit (client-go pops an arbitrary one; we pop the oldest).
        del record.messages[next(iter(record.messages))]
        return True

    def _allow(self, key: EventKey, now: float) -> bool:
        spam_key = (key.source, key.object)
        bucket = self._buckets.get(spam_key)
        if bucket is None:
            bucket = TokenBucket(self.burst, self.refill_s, now)
        allowed = bucket.take(now)
        self._buckets.put(spam_key, bucket)
        return allowed
