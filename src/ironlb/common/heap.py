"""Hand the C heap's free pages back to the kernel (glibc's malloc_trim), at most every so often.

A relist of many objects churns through memory that Python frees again, but glibc keeps most of the freed
pages mapped, so the resident set stays at its high-water mark
(docs/design.md, "Measurements behind the code"). malloc_trim(0) returns every free page, not just the heap's
top. Elsewhere than glibc it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


_TRIM = _malloc_trim()


def trim() -> bool:
    """Return the heap's free pages now; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class HeapTrimmer:
    """`maybe()` trims when EVERY_S have passed since the last trim (a few ms each, so not after every pass)."""

    def __init__(self, every_s: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 trim_now: Callable[[], bool] = trim) -> None:
        self.every_s, self.clock, self.trim_now = every_s, clock, trim_now
        self._last = clock()
        self.count = 0

    def maybe(self) -> bool:
        """Trim if it is time; True if it did."""
        now = self.clock()
        if now - self._last < self.every_s:
            return False
        self._last = now
        self.count += self.trim_now()
        return True
