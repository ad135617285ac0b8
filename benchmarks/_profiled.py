"""`python -m benchmarks._profiled OUT -- PYTHON -m ironlb.speaker.fast FD`: a fast plane's process under cProfile.

Profiling starts on SIGUSR1 and stops on SIGUSR2, which writes the statistics to OUT: a benchmark profiles its
idle window only, not the imports and the start (benchmarks.fast_idle --profile).
"""

from __future__ import annotations

import cProfile
import signal
import sys
from types import FrameType


def main() -> int:
    """Run the fast plane's process as `python -m ironlb.speaker.fast` would, profiled between the signals."""
    out, argv = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
    fd = argv[-1]
    from ironlb.speaker.fast.__main__ import without_unused

    without_unused()
    from ironlb.speaker.fast.child import main as child_main

    profile = cProfile.Profile()

    def start(_: int, __: FrameType | None) -> None:
        profile.enable()

    def stop(_: int, __: FrameType | None) -> None:
        profile.disable()
        profile.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    return child_main([fd])


if __name__ == "__main__":
    sys.exit(main())
