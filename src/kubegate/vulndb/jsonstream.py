"""Walk one very large JSON document member by member without holding it in memory.

Used by :mod:`kubegate.vulndb.nvd` (an NVD feed: one object whose ``vulnerabilities`` array holds
hundreds of thousands of CVEs, up to a few hundred MB uncompressed per year) and
:mod:`kubegate.vulndb.debtracker` (the Debian security tracker's object of packages). The text
is decoded incrementally into a sliding window; each value is parsed with the C scanner of
``json.JSONDecoder.raw_decode`` once it is complete in the window, so memory is bounded by the
largest single value plus one read. A value that does not parse although more text follows is
retried with a larger window; at the end of input it is an error (a truncated document).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator
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

    def end(self) -> None:
        """Only blanks may follow the document."""
        found = self._skip_ws()
        if found:
            raise VulnDBError(f"trailing data after the JSON document: {found!r}", where=self.where)
