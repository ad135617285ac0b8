"""The fast plane's process loads what it runs, not the control plane's computation nor ssl."""

from __future__ import annotations

import subprocess
import sys

from ironlb.speaker.control.fastproc import FastProcess
from tests.unit.speaker.fast.test_plane import free_port

# The control plane's: the fast plane holds claims, never a ranking table or a cluster view.
CONTROL_ONLY = ("ironlb.speaker.state.ranking", "ironlb.speaker.state.desired", "ironlb.speaker.state.persistent",
                "ironlb.speaker.state.incremental", "ironlb.speaker.state.cluster", "ironlb.speaker.state.slim",
                "ironlb.core.selectors")
# As `python -m ironlb.speaker.fast` starts: what it marks unused, then the child's imports, then a loop turn.
PROBE = """
import sys
from ironlb.speaker.fast.__main__ import without_unused
without_unused()
import asyncio
import ironlb.speaker.fast.child
asyncio.run(asyncio.sleep(0))
print(" ".join(sorted(name for name, module in sys.modules.items() if module is not None)))
"""


def test_the_fast_planes_process_loads_neither_ssl_nor_the_control_planes_modules() -> None:
    loaded = set(subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True,
                                timeout=60).stdout.split())
    assert "ironlb.speaker.fast.child" in loaded and "asyncio" in loaded
    assert not loaded & {"ssl", "_ssl", *CONTROL_ONLY}


async def test_the_fast_plane_the_speaker_starts_maps_no_ssl_library() -> None:
    fast = FastProcess("n1", b"k" * 32, free_port(), lambda _: None, lambda *_: None)
    await fast.start("::1")
    try:
        assert fast.process is not None
        with open(f"/proc/{fast.process.pid}/maps") as f:
            maps = f.read()
        assert "libpython" in maps or "python" in maps  # the right process, and readable
        assert "libssl" not in maps and "_ssl" not in maps
    finally:
        await fast.close()
