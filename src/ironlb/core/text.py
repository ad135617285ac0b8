"""User text (annotation values, Event messages) made safe to show on a terminal: no control characters.

An annotation value reaches Event messages and `ironlb doctor` prints them: an ANSI escape, a carriage
return or a bidi override in it could rewrite what an operator sees. Every such character becomes a
visible escape (\\x1b, \\u202e); printable text, non-ASCII letters included, is kept.
"""

from __future__ import annotations

import unicodedata

# Control, format (bidi overrides, zero-width), surrogate, private-use, unassigned, line/paragraph separators.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
ELLIPSIS = "..."


def _escape(ch: str) -> str:
    if ch.isprintable() and unicodedata.category(ch) not in UNSAFE_CATEGORIES:
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str, limit: int | None = None) -> str:
    """TEXT with unsafe characters escaped, at most LIMIT characters long (cut with '...', never mid-escape)."""
    if limit is None:
        return "".join(_escape(ch) for ch in text)
    out: list[str] = []
    size = 0
    for ch in text:
        piece = _escape(ch)
        if size + len(piece) > limit:
            while out and size + len(ELLIPSIS) > limit:  # make room for the marker, whole pieces only
                size -= len(out.pop())
            return "".join(out) + ELLIPSIS[:limit]
        out.append(piece)
        size += len(piece)
    return "".join(out)

