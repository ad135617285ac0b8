"""A monotonic clock the test moves by hand (for the Lease, the Event recorder, ...)."""

from __future__ import annotations


class FakeClock:
    """Monotonic time the test moves by hand: set or add to `now`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
