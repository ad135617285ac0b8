"""`python -m ironlb.speaker.fast FD`: the fast plane's process (`fast.child`), without the modules it never uses.

asyncio imports ssl whenever it can, and with it libssl and its tables
(docs/design.md, "Measurements behind the code"); the fast plane speaks UDP and raw frames only. Marked absent
before asyncio is imported, ssl is never loaded: asyncio then runs as on a Python built without it.
"""

from __future__ import annotations

import sys

UNUSED = ("ssl",)


def without_unused() -> None:
    """Make the modules in UNUSED unimportable in this process (an import of one raises ImportError)."""
    for name in UNUSED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


if __name__ == "__main__":
    without_unused()
    from ironlb.speaker.fast.child import main

    sys.exit(main())
