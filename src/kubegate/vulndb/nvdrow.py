"""What the advisory database keeps of an NVD CVE and its compact ``nvd`` row format.

:class:`NvdCve`/:class:`NvdMetric` are the kept fields; :func:`encode`/:func:`decode` (and
:func:`pack`, the tail both writers share) are the bytes of ``nvd.data``. Kept apart from
:mod:`kubegate.vulndb.nvd` (the feed reader, with msgspec and ISA-L) so that reading the
database (:class:`kubegate.vulndb.store.VulnDB`, the matcher) imports only json and zlib.
Written by :mod:`kubegate.vulndb.nvd` (feed rows), read by the store.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubegate.errors import VulnDBError
from kubegate.models import Severity

#: Row encoding version (first byte of ``nvd.data``): 1 = raw deflate, with :data:`_ZDICT` as
#: preset dictionary, of the compact JSON ``[status, published, description, metrics]``.
_ROW_FORMAT = 1
#: Strings most rows share (statuses, NVD's source, typical metric rows, common description
#: phrases): a preset dictionary lets deflate reference them from the first byte of each small
#: row (measured: rows about a quarter smaller than plain zlib). Part of row format 1: never edit
#: it; a new dictionary needs a new format number.
_ZDICT = (
    b'"Analyzed","Modified","Awaiting Analysis","Rejected","Undergoing Analysis","Received",'
    b'["3.1","nvd@nist.gov",1,"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",9.8,"CRITICAL"],'
    b'["4.0","CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",'
    b'["2.0","nvd@nist.gov",1,"AV:N/AC:L/Au:N/C:P/I:P/A:P",7.5,"HIGH"],'
    b'["3.0",0,"134c704f-9b21-4f2e-91b3-4a467353bcc0",'
    b'"MEDIUM"],"LOW"],"HIGH"],"CRITICAL"]]]'
    b" allows remote attackers to execute arbitrary code via a crafted "
    b" An issue was discovered in before allows attackers to cause a denial of service via "
    b" vulnerability in the of the "
)
ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class NvdMetric:
    """One CVSS metric of a CVE as NVD publishes it."""

    #: "4.0" | "3.1" | "3.0" | "2.0" (from cvssMetricV40/V31/V30/V2).
    version: str
    #: The metric's ``source`` as published: ``nvd@nist.gov``, a CNA's address, an ADP's UUID.
    source: str
    #: ``type == "Primary"`` (NVD's own analysis); False: Secondary (a CNA or an ADP).
    primary: bool
    #: ``cvssData.vectorString``.
    vector: str
    #: ``cvssData.baseScore``.
    score: float
    #: ``cvssData.baseSeverity`` (v3/v4); for v2 the metric object's own ``baseSeverity``.
    severity: Severity


@dataclass(frozen=True, slots=True)
class NvdCve:
    """What the database keeps of one NVD CVE."""

    id: str
    #: ``vulnStatus``: Analyzed, Modified, Rejected, Awaiting Analysis, ...
    status: str
    #: ``lastModified`` as published (NVD writes UTC without an offset).
    last_modified: str
    #: The English description (a title fallback).
    description: str | None
    metrics: tuple[NvdMetric, ...]
    #: ``published`` as published.
    published: str = ""


#: Row of the ``nvd`` table: (id, lastModified, :func:`encode` of the CVE).
Row = tuple[str, str, bytes]


def _zlib_deflate() -> Any:
    # Level 1: measured within 2% of level 6's size on these rows, and faster.
    return zlib.compressobj(1, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _ZDICT)


@functools.cache
def _deflate_factory() -> Callable[[], Any]:
    """ISA-L's deflate (same raw deflate stream, any zlib inflates it) when available: setting
    up a zlib compressor dominates the cost of one small row (measured 22 us vs 10 us)."""
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - python-isal has wheels for every supported platform
        return _zlib_deflate
    return lambda: isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15, 9, 0, _ZDICT)


_ROW_PREFIX = bytes((_ROW_FORMAT,))


def encode(cve: NvdCve) -> bytes:
    """The ``nvd.data`` blob: a format byte, then deflated compact JSON (without the id and
    ``lastModified``: they are the row's ``id`` and ``modified`` columns)."""
    doc = [
        cve.status,
        cve.published,
        cve.description,
        [
            [m.version, m.source, int(m.primary), m.vector, m.score, m.severity.name]
            for m in cve.metrics
        ],
    ]
    return pack(ENCODER.encode(doc).encode())


def pack(text: bytes) -> bytes:
    """A row's compact JSON -> the ``nvd.data`` blob (format byte, then raw deflate)."""
    # ISA-L is looked up at the first write, not at import: readers (the matcher) never pay.
    deflate = _deflate_factory()()
    body: bytes = deflate.compress(text) + deflate.flush()
    return _ROW_PREFIX + body


def decode(cve_id: str, last_modified: str, blob: bytes) -> NvdCve:
    """Inverse of :func:`encode`."""
    if not blob or blob[0] != _ROW_FORMAT:
        raise VulnDBError(f"unknown NVD row format {blob[:1]!r}", where=cve_id)
    inflate = zlib.decompressobj(-15, _ZDICT)
    text = inflate.decompress(blob[1:]) + inflate.flush()
    status, published, description, metrics = json.loads(text)
    return NvdCve(
        id=cve_id,
        status=status,
        last_modified=last_modified,
        description=description,
        metrics=tuple(
            NvdMetric(version, source, bool(primary), vector, float(score), Severity[severity])
            for version, source, primary, vector, score, severity in metrics
        ),
        published=published,
    )
