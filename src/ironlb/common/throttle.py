"""A per-key log throttle: the first line for a key goes out, then at most one per interval."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class Throttle:
    """Say "yes" to a key at most once per `interval_s`, counting the "no"s in between."""

    def __init__(self, interval_s: float = 10.0, max_keys: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s, self.max_keys, self.clock = interval_s, max_keys, clock
        self._last: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: Hashable) -> int | None:
        """None to stay quiet; else how many calls for KEY were suppressed since it last allowed one."""
        now = self.clock()
        with self._lock:
            last, suppressed = self._last.get(key, (None, 0))
            if last is not None and now - last < self.interval_s:
                self._last[key] = (last, suppressed + 1)
                return None
            self._last[key] = (now, 0)
            self._last.move_to_end(key)
            while len(self._last) > self.max_keys:
                self._last.popitem(last=False)
            return suppressed
