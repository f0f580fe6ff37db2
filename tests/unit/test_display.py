""":func:`kubegate.display.visible`, the one escape of every human format."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kubegate.display import quoted, visible


def test_ordinary_text_is_unchanged() -> None:
    text = "libssl1.1 1:1.2.11.dfsg-1+deb10u2 Größe 日本語 ✅ C:\\path [x] <b> | `a`"
    assert visible(text) == text


def test_controls_bidi_and_invisibles_become_visible_escapes() -> None:
    assert visible("a\x1b]0;t\x07b") == "a\\x1b]0;t\\x07b"
    assert visible("x\nPASS: y\r\t") == "x\\nPASS: y\\r\\t"
    assert visible("\x00\x7f\x85\x9b") == "\\x00\\x7f\\x85\\x9b"
    assert visible("a\u202eb\u2066c\u200bd\ufeffe\u2028") == (
        "a\\u202eb\\u2066c\\u200bd\\ufeffe\\u2028"
    )
    # An undecodable file name (surrogate escape) can be printed once escaped.
    assert visible("bad\udcff.yaml") == "bad\\udcff.yaml"
    visible("bad\udcff.yaml").encode("utf-8")


@given(st.text())
def test_output_is_printable_and_escaping_is_idempotent(text: str) -> None:
    shown = visible(text)
    assert visible(shown) == shown
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in shown)
    assert not any(0x202A <= ord(ch) <= 0x202E or 0x2066 <= ord(ch) <= 0x2069 for ch in shown)
    shown.encode("utf-8")


def test_quoted_escapes_and_cuts_after_the_limit() -> None:
    assert quoted("a\x1bb", 10) == "'a\\x1bb'"
    assert quoted("abcdef", 6) == "'abcdef'"
    assert quoted("abcdefg", 6) == "'abcdef'..."
