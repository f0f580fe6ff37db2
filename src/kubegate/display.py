"""Text from hostile input made safe to show: the one escaping function of every human format.

File names, object and container names and image references come from the judged revision;
package names, versions and os-release fields from the image. Shown raw, an ESC or OSC sequence
rewrites a terminal (its title, colours, the line above), a newline forges a line (``PASS: ...``)
in a CI log, a bidi override reorders what a reviewer reads, and most C0 characters make XML
invalid. :func:`visible` turns every such character into a visible escape (``\\x1b``, ``\\n``,
``\\u202e``); printable text, non-ASCII letters included, is unchanged, so normal reports are
byte for byte what they were. Backslashes are left alone: the escape is for eyes, not a round
trip (JSON output keeps the exact strings, docs/security.md).

Called by every human writer (``report.table``, ``report.gate``, ``report.markdown``,
``report.junit``, ``report.sarif`` message texts, ``report.sbom``'s table, ``kubegate images``'
table) and by the CLI for every stderr line and log record. :func:`quoted` is how error
messages cite a hostile value (``reference``, ``render.confine``). It sits in the lowest layer.
"""

from __future__ import annotations

import re

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

#: C0 and DEL, C1, bidi embeddings/overrides/isolates and marks, the Arabic letter mark, line and
#: paragraph separators, zero-width joiners/spaces and BOM (they hide or reorder text), lone
#: surrogates (undecodable file names: they cannot even be encoded for output), U+FFFE/U+FFFF.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
    "\ud800-\udfff\ufffe\uffff]"
)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control, bidi and invisible formatting character escaped.

    Idempotent (an escape is printable ASCII), and the identity on ordinary text.
    """
    return _UNSAFE.sub(_escape, text)


def quoted(text: str, limit: int) -> str:
    """``text`` quoted for an error message: control characters escaped, cut after ``limit``.

    A value from the judged revision may be a whole file (a replacement can put one anywhere):
    messages cite at most ``limit`` characters of it, then ``...``.
    """
    return repr(text[:limit]) + ("..." if len(text) > limit else "")
