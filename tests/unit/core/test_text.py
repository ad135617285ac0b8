"""User text made safe for terminals: control, format and separator characters escaped, length bounded."""

from __future__ import annotations

import pytest

from ironlb.core.text import printable


@pytest.mark.parametrize("text, shown", [
    ("pool-a", "pool-a"),
    ("caf\u00e9 \u2713 \u2013", "caf\u00e9 \u2713 \u2013"),  # printable non-ASCII stays
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),  # ANSI colour
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # OSC: sets the terminal's title
    ("ok\rFAKE", "ok\\x0dFAKE"),  # carriage return overwrites the line
    ("a\nb\tc", "a\\x0ab\\x09c"),
    ("\x9b2J", "\\x9b2J"),  # C1 CSI
    ("abc\u202edcba", "abc\\u202edcba"),  # bidi override
    ("zero\u200bwidth", "zero\\u200bwidth"),
    ("line\u2028sep", "line\\u2028sep"),
])
def test_unsafe_characters_become_visible_escapes(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_bounded_text_is_cut_with_a_marker_never_inside_an_escape() -> None:
    assert printable("x" * 10, 10) == "x" * 10
    assert printable("x" * 11, 10) == "x" * 7 + "..."
    cut = printable("ab" + "\x1b" * 10, 10)
    assert cut == "ab\\x1b..." and len(cut) <= 10
    assert all(len(printable("\x1b" * n + "y" * n, 50)) <= 50 for n in range(60))
