"""NVD CVE API 2.0 data feeds: what kubegate keeps of a CVE, and the streaming feed reader.

The feeds (``nvdcve-2.0-YYYY.json.gz``, ``nvdcve-2.0-modified.json.gz``, each with a ``.meta``)
are one JSON object ``{"format": "NVD_CVE", "version": "2.0", ..., "vulnerabilities":
[{"cve": {...}}, ...]}`` following NIST's ``cve_api_json_2.0.schema``. Per CVE only the id,
``vulnStatus``, ``published``, ``lastModified``, the English description and every CVSS metric
(``cvssMetricV40``, ``cvssMetricV31``, ``cvssMetricV30``, ``cvssMetricV2``, each with its
``source`` and ``type``) are kept; CPE configurations, references, weaknesses and other metric
kinds (``ssvcV203``) are dropped. :class:`FeedReader` streams a feed (gzip through python-isal,
zlib as a fallback) with :mod:`kubegate.vulndb.jsonstream` and hashes the uncompressed bytes for
the ``.meta`` check; the ``vulnerabilities`` array is decoded in runs of many CVEs by msgspec
into structs of only the kept fields (everything else is skipped in C), which is what makes a
full import of ~300k CVEs take seconds, with the standard library's parser as the exact fallback
for whatever msgspec does not take. :func:`encode`/:func:`decode` (from
:mod:`kubegate.vulndb.nvdrow`) are the compact row format of the ``nvd`` table
(:meth:`FeedReader.rows` produces the same bytes without building :class:`NvdCve` objects).
Called by :mod:`kubegate.vulndb.nvdimport` (writes); :class:`kubegate.vulndb.store.VulnDB`
reads the rows through :mod:`kubegate.vulndb.nvdrow` alone.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import msgspec

from kubegate.errors import VulnDBError
from kubegate.models import Severity
from kubegate.vulndb.jsonstream import JSONStream
from kubegate.vulndb.nvdrow import ENCODER, NvdCve, NvdMetric, Row, decode, encode, pack
from kubegate.vulndb.records import InvalidRecord

_logger = logging.getLogger(__name__)

#: Metric keys of ``cve.metrics`` kept, newest CVSS version first, and the version each holds.
METRIC_KEYS: tuple[tuple[str, str], ...] = (
    ("cvssMetricV40", "4.0"),
    ("cvssMetricV31", "3.1"),
    ("cvssMetricV30", "3.0"),
    ("cvssMetricV2", "2.0"),
)
#: The largest single CVE accepted (the biggest real ones, with thousands of CPE matches, are a
#: few MB of JSON).
MAX_CVE_CHARS = 64 * 1024 * 1024
_SEVERITIES = {s.name: s for s in Severity}
_SEVERITY_NAMES = {name: name for name in _SEVERITIES}
_CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,}$")
_GZIP_MAGIC = b"\x1f\x8b"
#: msgspec writes the same compact JSON as :data:`kubegate.vulndb.nvdrow.ENCODER` (strings:
#: same escapes, UTF-8 as is) except floats printed with an exponent (Python ``1e+16``,
#: msgspec ``1e16``): rows whose scores fall outside this range go through ENCODER.
_PLAIN_FLOATS = (1e-4, 1e15)
_FORMAT_SNIFF = re.compile(rb'"format"\s*:\s*"NVD_CVE"')
_META_LINE = re.compile(r"^([A-Za-z0-9]+):(.*)$")
#: The largest ``.meta`` file read (the real ones are about 150 bytes).
MAX_META_BYTES = 4096


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """An NVD ``.meta`` file: ``lastModifiedDate``, ``size``, ``gzSize``, ``sha256`` lines."""

    last_modified: str
    #: Uncompressed size of the JSON.
    size: int | None
    gz_size: int | None
    #: Upper-case hex SHA-256 of the uncompressed JSON.
    sha256: str


def parse_meta(text: str, where: str) -> FeedMeta:
    """Parse a ``.meta`` file (``key:value`` lines, CRLF or LF); a missing sha256 is an error."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        found = _META_LINE.match(line.strip())
        if found:
            fields[found.group(1)] = found.group(2).strip()
    sha = fields.get("sha256", "").upper()
    if not re.fullmatch(r"[0-9A-F]{64}", sha):
        raise VulnDBError("NVD .meta file has no valid sha256 line", where=where)

    def number(key: str) -> int | None:
        value = fields.get(key, "")
        return int(value) if value.isdigit() else None

    return FeedMeta(
        last_modified=fields.get("lastModifiedDate", ""),
        size=number("size"),
        gz_size=number("gzSize"),
        sha256=sha,
    )


def feed_name(path: Path) -> str:
    """``nvdcve-2.0-2024.json.gz`` -> ``nvdcve-2.0-2024``."""
    name = path.name
    for suffix in (".json.gz", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def meta_path(feed: Path) -> Path:
    """``nvdcve-2.0-2024.json.gz`` -> ``nvdcve-2.0-2024.meta`` (NVD's naming), same directory."""
    return feed.with_name(feed_name(feed) + ".meta")


def _severity(text: object) -> Severity:
    if not isinstance(text, str):
        return Severity.UNKNOWN
    return _SEVERITIES.get(text.upper(), Severity.UNKNOWN)


def _metric(entry: object, version: str) -> NvdMetric | None:
    if not isinstance(entry, dict):
        return None
    data = entry.get("cvssData")
    if not isinstance(data, dict):
        return None
    vector = data.get("vectorString")
    score = data.get("baseScore")
    if not isinstance(vector, str) or not isinstance(score, int | float) or isinstance(score, bool):
        return None
    # CVSS v2 has no severity in the standard: NVD puts its own rating on the metric object.
    severity = data.get("baseSeverity") if version != "2.0" else entry.get("baseSeverity")
    source = entry.get("source")
    return NvdMetric(
        version=version,
        source=source if isinstance(source, str) else "",
        primary=entry.get("type") == "Primary",
        vector=vector,
        score=float(score),
        severity=_severity(severity),
    )


def _english(descriptions: object) -> str | None:
    if not isinstance(descriptions, list):
        return None
    fallback: str | None = None
    for entry in descriptions:
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), str):
            continue
        lang = entry.get("lang")
        if lang == "en":
            return cast(str, entry["value"])
        # Some CNAs tag English as "en-US"; better than nothing if no plain "en" exists.
        if isinstance(lang, str) and lang.lower().startswith("en") and fallback is None:
            fallback = cast(str, entry["value"])
    return fallback


def parse_cve(item: object) -> NvdCve:
    """One ``vulnerabilities[]`` element (``{"cve": {...}}``) -> NvdCve (InvalidRecord if not)."""
    cve = item.get("cve") if isinstance(item, dict) else None
    if not isinstance(cve, dict):
        raise InvalidRecord("vulnerabilities[] element has no 'cve' object")
    cve_id = cve.get("id")
    if not isinstance(cve_id, str) or not _CVE_ID.match(cve_id):
        raise InvalidRecord(f"bad CVE id {str(cve_id)[:60]!r}")
    modified = cve.get("lastModified")
    if not isinstance(modified, str) or not modified:
        raise InvalidRecord("no lastModified", where=cve_id)
    status = cve.get("vulnStatus")
    published = cve.get("published")
    metrics: list[NvdMetric] = []
    raw_metrics = cve.get("metrics")
    if isinstance(raw_metrics, dict):
        for key, version in METRIC_KEYS:
            entries = raw_metrics.get(key)
            if isinstance(entries, list):
                metrics.extend(m for m in (_metric(e, version) for e in entries) if m is not None)
    return NvdCve(
        id=cve_id,
        status=status if isinstance(status, str) else "",
        last_modified=modified,
        description=_english(cve.get("descriptions")),
        metrics=tuple(metrics),
        published=published if isinstance(published, str) else "",
    )


def _inflate_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error)
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - python-isal has wheels for every supported platform
        return errors
    # ISA-L reports bad deflate data with its own exception class, not OSError.
    return (*errors, cast(type[BaseException], isal_zlib.error))


#: What reading a corrupt or truncated gzip stream can raise.
INFLATE_ERRORS = _inflate_errors()


def open_decompressed(handle: BinaryIO) -> BinaryIO:
    """``handle`` itself, or a gunzipping reader over it when it starts with the gzip magic."""
    head = handle.peek(2)[:2] if hasattr(handle, "peek") else b""
    if head != _GZIP_MAGIC:
        return handle
    try:
        from isal import igzip
    except ImportError:  # pragma: no cover - python-isal has wheels for every supported platform
        import gzip

        return cast(BinaryIO, gzip.GzipFile(fileobj=handle, mode="rb"))
    return cast(BinaryIO, cast(Any, igzip).IGzipFile(fileobj=handle, mode="rb"))


def sniff(path: Path) -> bytes:
    """The first 64 KiB of a file's (gunzipped) content, for telling formats apart."""
    try:
        with path.open("rb", buffering=1 << 16) as raw:
            stream = open_decompressed(raw)
            return stream.read(1 << 16)
    except INFLATE_ERRORS:
        return b""


def is_nvd_feed(head: bytes) -> bool:
    """Whether :func:`sniff` output looks like an NVD 2.0 feed (``"format": "NVD_CVE"``)."""
    return head.lstrip()[:1] == b"{" and _FORMAT_SNIFF.search(head) is not None


# The structs below name their fields after NVD's keys (msgspec matches them by name) and hold
# only what is kept; msgspec copies a mutable default such as ``[]`` per instance.
class _CvssData(msgspec.Struct, gc=False):
    vectorString: str | None = None
    baseScore: float | None = None
    baseSeverity: str | None = None


class _Metric(msgspec.Struct, gc=False):
    source: str | None = None
    type: str | None = None
    cvssData: _CvssData | None = None
    baseSeverity: str | None = None  # CVSS v2 only


class _Metrics(msgspec.Struct, gc=False):
    cvssMetricV40: list[_Metric] = []
    cvssMetricV31: list[_Metric] = []
    cvssMetricV30: list[_Metric] = []
    cvssMetricV2: list[_Metric] = []


class _Description(msgspec.Struct, gc=False):
    lang: str | None = None
    value: str | None = None


class _Cve(msgspec.Struct, gc=False):
    id: str | None = None
    lastModified: str | None = None
    vulnStatus: str = ""
    published: str = ""
    descriptions: list[_Description] | None = None
    metrics: _Metrics | None = None


class _Item(msgspec.Struct, gc=False):
    """One ``vulnerabilities[]`` element, typed so that anything :func:`parse_cve` would treat
    specially (a field of another type, a null where a string is expected) fails msgspec's
    validation and sends the run to the standard library path instead."""

    cve: _Cve


_RUN_DECODER = msgspec.json.Decoder(list[_Item])
_RUNENCODER = msgspec.json.Encoder()


def _decode_run(text: bytes) -> list[_Item] | None:
    try:
        return _RUN_DECODER.decode(text)
    except msgspec.MsgspecError:  # malformed for msgspec, or a value of an unexpected type
        return None


def _english_struct(descriptions: list[_Description] | None) -> str | None:
    """:func:`_english` on decoded structs."""
    if not descriptions:
        return None
    fallback: str | None = None
    for entry in descriptions:
        if entry.value is None:
            continue
        lang = entry.lang
        if lang == "en":
            return entry.value
        if lang is not None and fallback is None and lang.lower().startswith("en"):
            fallback = entry.value
    return fallback


def _struct_row(item: _Item) -> Row | InvalidRecord:
    """The row :func:`encode` would give for ``parse_cve`` of the same element."""
    cve = item.cve
    cve_id, modified = cve.id, cve.lastModified
    if cve_id is None or not _CVE_ID.match(cve_id) or not modified:
        try:  # the same messages as the standard library path
            parse_cve(msgspec.to_builtins(item))
        except InvalidRecord as exc:
            return exc
        raise AssertionError(cve_id)  # pragma: no cover - parse_cve checks the same
    metrics: list[list[Any]] = []
    plain = True
    low, high = _PLAIN_FLOATS
    found = cve.metrics
    if found is not None:
        for key, version in METRIC_KEYS:
            entries: list[_Metric] = getattr(found, key)
            for entry in entries:
                data = entry.cvssData
                if data is None or data.vectorString is None or data.baseScore is None:
                    continue
                score = data.baseScore
                severity = entry.baseSeverity if version == "2.0" else data.baseSeverity
                if score != 0 and not low <= abs(score) < high:
                    plain = False
                metrics.append(
                    [
                        version,
                        entry.source or "",
                        int(entry.type == "Primary"),
                        data.vectorString,
                        score,
                        _SEVERITY_NAMES.get(severity.upper(), "UNKNOWN")
                        if severity is not None
                        else "UNKNOWN",
                    ]
                )
    doc = [cve.vulnStatus, cve.published, _english_struct(cve.descriptions), metrics]
    return (
        cve_id,
        modified,
        pack(_RUNENCODER.encode(doc) if plain else ENCODER.encode(doc).encode()),
    )


class FeedReader:
    """Streams the CVEs of one feed file, hashing the uncompressed JSON as it goes.

    Iterate it for ``NvdCve`` (or ``InvalidRecord`` for an unusable CVE); after the iteration
    :attr:`sha256` describes the uncompressed document, which has then been
    checked to be an ``NVD_CVE`` feed. Read errors (truncated gzip, bad CRC, malformed JSON)
    raise VulnDBError.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256 = ""
        self.count = 0

    def __iter__(self) -> Iterator[NvdCve | InvalidRecord]:
        for item in self._items():
            try:
                yield parse_cve(msgspec.to_builtins(item) if isinstance(item, _Item) else item)
            except InvalidRecord as exc:
                yield exc

    def rows(self) -> Iterator[Row | InvalidRecord]:
        """The feed's ``nvd`` rows (as ``encode`` of each CVE), or InvalidRecord per unusable
        CVE: the import's path, with no Python object per CVE beyond msgspec's structs."""
        for item in self._items():
            if isinstance(item, _Item):
                yield _struct_row(item)
                continue
            try:
                cve = parse_cve(item)
            except InvalidRecord as exc:
                yield exc
                continue
            yield cve.id, cve.last_modified, encode(cve)

    def _items(self) -> Iterator[object]:
        """Each ``vulnerabilities[]`` element: an ``_Item`` or, where msgspec did not take
        the text, the standard library's plain value."""
        where = str(self.path)
        digest = hashlib.sha256()
        try:
            with self.path.open("rb", buffering=1 << 16) as raw:
                stream = open_decompressed(raw)

                def read(size: int) -> bytes:
                    data = stream.read(size)
                    digest.update(data)
                    return data

                yield from self._walk(JSONStream(read, where, MAX_CVE_CHARS))
        except INFLATE_ERRORS as exc:
            raise VulnDBError(f"cannot read NVD feed: {exc}", where=where) from exc
        self.sha256 = digest.hexdigest().upper()

    def _walk(self, stream: JSONStream) -> Iterator[object]:
        fmt: object = None
        seen_list = False
        for key in stream.members():
            if key != "vulnerabilities":
                value = stream.value()
                if key == "format":
                    fmt = value
                    if fmt != "NVD_CVE":
                        raise VulnDBError(
                            f"not an NVD CVE feed (format {str(fmt)[:40]!r})", where=stream.where
                        )
                continue
            seen_list = True
            for run in stream.element_runs("cve", _decode_run):
                self.count += len(run)
                yield from run
        stream.end()
        if fmt != "NVD_CVE" or not seen_list:
            raise VulnDBError(
                'not an NVD CVE feed (no "format": "NVD_CVE" or no vulnerabilities)',
                where=stream.where,
            )


__all__ = [
    "INFLATE_ERRORS",
    "MAX_CVE_CHARS",
    "MAX_META_BYTES",
    "METRIC_KEYS",
    "FeedMeta",
    "FeedReader",
    "NvdCve",
    "NvdMetric",
    "Row",
    "decode",
    "encode",
    "feed_name",
    "is_nvd_feed",
    "meta_path",
    "open_decompressed",
    "parse_cve",
    "parse_meta",
    "sniff",
]
