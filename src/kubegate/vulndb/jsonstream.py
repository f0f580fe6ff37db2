"""Walk one very large JSON document member by member without holding it in memory.

Used by :mod:`kubegate.vulndb.nvd` (an NVD feed: one object whose ``vulnerabilities`` array holds
hundreds of thousands of CVEs, up to a few hundred MB uncompressed per year) and
:mod:`kubegate.vulndb.debtracker` (the Debian security tracker's object of packages). The text
is decoded incrementally into a sliding window; each value is parsed with the C scanner of
``json.JSONDecoder.raw_decode`` once it is complete in the window, so memory is bounded by the
largest single value plus one read. A value that does not parse although more text follows is
retried with a larger window; at the end of input it is an error (a truncated document).

:meth:`JSONStream.element_runs` is the fast path for arrays whose elements all begin with the
same key (NVD's ``{"cve": ...}``): it keeps the window as UTF-8 bytes (checked, not decoded),
cuts it at the last element start and hands the caller many whole elements at once, to decode
with a faster decoder than the standard library's.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kubegate.errors import VulnDBError

#: Characters read per refill (the C scanner is fastest on windows of this order).
_READ = 1 << 20
_WHITESPACE = " \t\n\r"


class JSONStream:
    """A cursor over a JSON text read from ``read`` (a binary ``read(n)`` callable)."""

    def __init__(self, read: Callable[[int], bytes], where: str, max_value_chars: int) -> None:
        self._read = read
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._json = json.JSONDecoder()
        self._buf = ""
        self._pos = 0
        self._eof = False
        #: Characters dropped from the front of the window so far (positions across refills).
        self._dropped = 0
        self.where = where
        #: One value (a CVE, a package's entries) larger than this is refused: hostile or broken.
        self.max_value_chars = max_value_chars

    def _fill(self) -> bool:
        """Append more text to the window; False at the end of input."""
        if self._eof:
            return False
        data = self._read(_READ)
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise VulnDBError(f"not UTF-8 JSON: {exc}", where=self.where) from exc
        if not data:
            self._eof = True
        if self._pos:
            self._dropped += self._pos
            self._buf = self._buf[self._pos :]
            self._pos = 0
        self._buf += text
        return bool(data) or bool(text)

    def _skip_ws(self) -> str:
        """The next non-blank character (not consumed); '' at the end of input."""
        while True:
            buf, pos = self._buf, self._pos
            end = len(buf)
            while pos < end and buf[pos] in _WHITESPACE:
                pos += 1
            self._pos = pos
            if pos < end:
                return buf[pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        """Consume ``char`` (after blanks) or fail."""
        found = self._skip_ws()
        if found != char:
            raise self._unexpected(repr(char), found)
        self._pos += 1

    def _unexpected(self, expected: str, found: str) -> VulnDBError:
        if not found:
            return VulnDBError(
                f"truncated JSON: expected {expected}, found the end of input", where=self.where
            )
        return VulnDBError(
            f"malformed JSON: expected {expected}, found {found!r}", where=self.where
        )

    def peek(self) -> str:
        """The next non-blank character without consuming it ('' at the end of input)."""
        return self._skip_ws()

    def value(self) -> Any:
        """Parse and consume the next complete JSON value."""
        self._skip_ws()
        while True:
            try:
                value, end = self._json.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                # Numbers and literals can also end exactly at the window's end: only a value
                # followed by more text is known complete, so refill while input remains.
                if len(self._buf) - self._pos > self.max_value_chars:
                    raise VulnDBError(
                        f"one JSON value is larger than {self.max_value_chars} characters",
                        where=self.where,
                    ) from exc
                if not self._fill():
                    raise VulnDBError(
                        f"malformed or truncated JSON: {exc.msg} at character {exc.pos}",
                        where=self.where,
                    ) from exc
                continue
            if end == len(self._buf) and not self._eof and self._fill():
                continue  # a number cut by the window (``12`` of ``123``): parse again
            self._pos = end
            return value

    def members(self) -> Iterator[str]:
        """Iterate an object's keys (after ``{``); the caller consumes each value in between."""
        self.expect("{")
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise VulnDBError("malformed JSON: object key is not a string", where=self.where)
            self.expect(":")
            yield key
            following = self.peek()
            self._pos += 1
            if following == "}":
                return
            if following != ",":
                raise self._unexpected("',' or '}'", following)

    def elements(self) -> Iterator[Any]:
        """Iterate and parse an array's elements (at ``[``), one value at a time."""
        self.expect("[")
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            yield self.value()
            following = self.peek()
            self._pos += 1
            if following == "]":
                return
            if following != ",":
                raise self._unexpected("',' or ']'", following)

    def element_runs(
        self, first_key: str, decode: Callable[[bytes], Sequence[Any] | None]
    ) -> Iterator[Sequence[Any]]:
        """Iterate an array's elements (at ``[``) in runs of whole elements.

        Each element is expected to be an object whose first key is ``first_key``. The window,
        kept as the bytes read (UTF-8 checked as they are read, not decoded to text), is cut
        just before the last ``,{"first_key":`` it holds (blanks allowed); the bytes from the
        cursor to that comma, wrapped in ``[...]``, go to ``decode``, which returns their
        elements, or None for text it does not take.

        Why such a cut is safe: ``{`` followed by blanks and a raw ``"`` cannot lie inside a
        JSON string (that ``"`` would close the string, and ``first_key"`` after a closed string
        is not JSON), so a match is a real object whose first key is ``first_key``. If it is an
        object nested *inside* an element rather than the next element, the run ends inside an
        unclosed element and cannot decode. Whenever ``decode`` returns None (that, or a value
        it does not accept), and for an element no cut follows in the window (the last one, or
        one larger than the window), elements are parsed one at a time as :meth:`elements`
        does and yielded as one-element lists of plain values: the values never depend on
        where cuts fall.
        """
        self.expect("[")
        if self.peek() == "]":
            self._pos += 1
            return
        marker = f'"{first_key}"'.encode()
        raw, pos = self._take_raw(), 0
        while True:
            # Half a read ahead is enough for a run: one refill per run (each copies the rest).
            while len(raw) - pos < _READ // 2 and not self._eof:
                raw, pos = raw[pos:] + self._read_raw(), 0
            cut = _last_cut(raw, pos, marker)
            items = decode(b"".join((b"[", memoryview(raw)[pos:cut], b"]"))) if cut > 0 else None
            if items is not None:
                pos = cut + 1  # after the comma: at the next element
                yield items
                continue
            # One element at a time the standard library's way, on text, up to past the cut.
            pending = len(self._decoder.getstate()[0])
            self._buf, self._pos = raw[pos : len(raw) - pending].decode(), 0
            stop = self._dropped + (len(raw[pos:cut].decode()) if cut > 0 else -1)
            while True:
                yield [self.value()]
                following = self.peek()
                self._pos += 1
                if following == "]":
                    return
                if following != ",":
                    raise self._unexpected("',' or ']'", following)
                if self._dropped + self._pos > stop:
                    break
            raw, pos = self._take_raw(), 0

    def _take_raw(self) -> bytes:
        """Hand the window over as bytes: the text not consumed yet, and the bytes the
        incremental decoder holds (a character cut by the last read)."""
        raw = self._buf[self._pos :].encode() + self._decoder.getstate()[0]
        self._dropped += len(self._buf)
        self._buf, self._pos = "", 0
        return raw

    def _read_raw(self) -> bytes:
        """One read for the bytes window, checked as UTF-8 exactly as :meth:`_fill` does."""
        data = self._read(_READ)
        try:
            self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise VulnDBError(f"not UTF-8 JSON: {exc}", where=self.where) from exc
        if not data:
            self._eof = True
        return data

    def end(self) -> None:
        """Only blanks may follow the document."""
        found = self._skip_ws()
        if found:
            raise VulnDBError(f"trailing data after the JSON document: {found!r}", where=self.where)


_BLANKS = b" \t\n\r"
_COMMA, _COLON, _BRACE = b",:{"


def _last_cut(raw: bytes, pos: int, marker: bytes) -> int:
    """Index of the comma before the last ``,{marker:`` in ``raw`` after ``pos``, or -1."""
    low, high, size = pos + 1, len(raw), len(raw)
    while True:
        found = raw.rfind(marker, low, high)
        if found < 0:
            return -1
        high = found + len(marker) - 1  # the next search ends before this match
        after = found + len(marker)
        while after < size and raw[after] in _BLANKS:
            after += 1
        if after >= size or raw[after] != _COLON:
            continue
        before = found - 1
        while before > low and raw[before] in _BLANKS:
            before -= 1
        if raw[before] != _BRACE:
            continue
        before -= 1
        while before > low and raw[before] in _BLANKS:
            before -= 1
        if before > pos and raw[before] == _COMMA:
            return before
