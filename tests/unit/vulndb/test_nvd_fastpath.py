"""The msgspec run decoder of NVD feeds stores exactly what the standard library path stores.

The reference is the import as it was before the fast path: ``json.loads`` of the whole document,
:func:`parse_cve` of each ``vulnerabilities[]`` element and :func:`encode` of the result. The
fast path (:meth:`FeedReader.rows`: ``JSONStream.element_runs`` cutting the array at
``,{"cve":`` and msgspec structs) must give the same rows, byte for byte, and the same invalid
CVEs, on generated feeds with every kind of text that could confuse the cut or the decoder.

Shapes: the elements come from tests/fixtures/nvdfeed.py (NIST's ``cve_api_json_2.0.schema``);
in that schema only ``def_cve_item`` (the ``vulnerabilities[]`` element, no additional
properties) has a ``cve`` key, but ``reference``, ``config``, ``node`` and ``cpe_match`` do not
forbid additional properties, so an object nested in an element whose first key is ``cve`` is
valid and is generated here.
"""

from __future__ import annotations

import copy
import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from kubegate.errors import VulnDBError
from kubegate.vulndb import jsonstream, nvd
from kubegate.vulndb.nvd import FeedReader, encode, parse_cve
from kubegate.vulndb.records import InvalidRecord
from tests.fixtures.nvdfeed import CISA_ADP, nvd_cve, v2, v31, v40

# Text that could end a JSON string early or look like an element start if the cut were naive.
_TRICKY = [
    'He said "hi" and left',
    'a {"cve": {"id": "CVE-1999-0001"}} inside a description',
    '}, {"cve" : {',
    '},{"cve":',
    'back\\slash \\" and \\\\',
    "caf\u00e9 \u65e5\u672c \U0001f600 \u2028 \u2029 \ufeff",
    "controls \x01 \x1f \n \t \r \b \f",
    "\u00e9" * 3 + '"cve"',
    "",
]


def _item(rng: random.Random, number: int) -> dict[str, Any]:
    cve_id = f"CVE-20{rng.randint(10, 24)}-{number:05d}"
    metrics: dict[str, Any] = {}
    if rng.random() < 0.8:
        metrics["cvssMetricV31"] = [
            v31(rng.choice([9.8, 7.5, 5.0, 0.0, 10]), "CRITICAL", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N")
        ]
    if rng.random() < 0.4:
        metrics["cvssMetricV40"] = [v40(8.7, "high", "CVSS:4.0/AV:N", source=CISA_ADP)]
    if rng.random() < 0.3:
        metrics["cvssMetricV2"] = [v2(4.3, "MEDIUM", "AV:N/AC:M/Au:N/C:N/I:P/A:N")]
    item = nvd_cve(
        cve_id,
        f"2024-0{rng.randint(1, 9)}-01T00:00:00.000",
        description=rng.choice(_TRICKY) + f" #{number}",
        metrics=metrics,
    )
    cve = item["cve"]
    cve["references"].append({"url": rng.choice(_TRICKY), "tags": ["cve", '{"cve":']})
    if rng.random() < 0.3:
        # A nested object whose first key is "cve": a false cut the fast path must survive.
        cve["references"].insert(0, {"cve": {"id": cve_id}, "url": "https://example.test/"})
    if rng.random() < 0.2:
        cve["configurations"] = cve["configurations"] * rng.randint(2, 40)
    return item


def _odd_items() -> list[Any]:
    """Elements msgspec must refuse (sending their run to the standard library) or that are
    invalid CVEs, and scores whose JSON spelling differs between encoders."""
    base = nvd_cve("CVE-2024-90000")
    odd: list[Any] = []

    def variant(change: Any) -> None:
        item = copy.deepcopy(base)
        item["cve"]["id"] = f"CVE-2024-9{len(odd):04d}"
        change(item["cve"])
        odd.append(item)

    variant(lambda cve: cve.update(published=None))
    variant(lambda cve: cve.update(vulnStatus=5))
    variant(lambda cve: cve.update(descriptions=["x", {"lang": "en-US", "value": "US"}]))
    variant(lambda cve: cve.update(descriptions=[{"lang": "EN-gb", "value": "gb"}]))
    variant(lambda cve: cve.update(descriptions=None, metrics=None))
    variant(lambda cve: cve.update(metrics={"cvssMetricV31": {"not": "a list"}}))
    variant(lambda cve: cve.update(metrics={"cvssMetricV31": [v31(True, "HIGH", "V")]}))  # type: ignore[arg-type]
    variant(lambda cve: cve.update(metrics={"cvssMetricV31": [{"cvssData": None}, 3]}))
    variant(lambda cve: cve.update(metrics={"cvssMetricV30": [{"type": "Primary"}]}))
    variant(lambda cve: cve["configurations"].append({"score": float("nan")}))
    variant(lambda cve: cve["references"].append({"url": "lone \ud800 surrogate"}))
    for score in (1e16, 1e-05, 12345678901234567890, 7):
        variant(lambda cve, s=score: cve.update(metrics={"cvssMetricV31": [v31(s, "LOW", "V")]}))
    # Invalid CVEs: the same messages as parse_cve gives.
    variant(lambda cve: cve.update(id="GHSA-xxxx"))
    variant(lambda cve: cve.pop("lastModified"))
    variant(lambda cve: cve.update(lastModified=""))
    odd += [{}, {"cve": []}, {"x": 1, "cve": base["cve"]}, {"cve": {"id": None}}]
    return odd


def _document(items: list[Any], style: str) -> bytes:
    doc: dict[str, Any] = {"resultsPerPage": len(items), "format": "NVD_CVE", "version": "2.0"}
    doc["vulnerabilities"] = items
    doc["timestamp"] = "2024-06-01T00:00:00.000"  # a member after the array too
    if style == "pretty":
        text = json.dumps(doc, indent=2)
    elif style == "compact":
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    else:  # tabs and CRLF between tokens, non-ASCII as-is
        text = json.dumps(doc, indent="\t", ensure_ascii=False).replace("\n", "\r\n")
    return text.encode("utf-8", "surrogatepass")


def _reference(document: bytes) -> list[object]:
    out: list[object] = []
    for element in json.loads(document)["vulnerabilities"]:
        try:
            cve = parse_cve(element)
        except InvalidRecord as exc:
            out.append(exc.diagnostics())
            continue
        out.append((cve.id, cve.last_modified, encode(cve)))
    return out


def _fast(path: Path) -> list[object]:
    reader = FeedReader(path)
    out = [row.diagnostics() if isinstance(row, InvalidRecord) else row for row in reader.rows()]
    assert reader.count == len(out)
    return out


@pytest.mark.parametrize("style", ["pretty", "compact", "tabs-crlf"])
@pytest.mark.parametrize("window", [1 << 20, 4096, 300], ids=["1MiB", "4KiB", "300"])
def test_fast_path_stores_exactly_what_the_stdlib_path_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str, window: int
) -> None:
    # Small windows put many cuts (and elements larger than the window) in a small feed.
    monkeypatch.setattr(jsonstream, "_READ", window)
    decoded: list[bool] = []

    def counting(text: bytes) -> object:
        items = decode_run(text)
        decoded.append(items is not None)
        return items

    decode_run = nvd._decode_run
    monkeypatch.setattr(nvd, "_decode_run", counting)
    rng = random.Random(f"{style}-{window}")
    items: list[Any] = [_item(rng, number) for number in range(300)]
    for odd in _odd_items():
        items.insert(rng.randrange(len(items) + 1), odd)
    items.append(_item(rng, 99999))  # the last element is never followed by a cut
    document = _document(items, style)
    if "\ud800" in document.decode("utf-8", "surrogatepass"):
        # Only the \ud800 escape is valid JSON text; a raw lone surrogate is not UTF-8.
        items = [item for item in items if "lone" not in json.dumps(item)]
        document = _document(items, style)
    path = tmp_path / "nvdcve-2.0-2024.json.gz"
    path.write_bytes(gzip.compress(document))
    expected = _reference(document)
    assert _fast(path) == expected
    # Runs sent back to the standard library (the odd elements), and with windows smaller than
    # the feed, runs msgspec took (with 1 MiB the whole feed is one run, holding odd ones).
    assert decoded.count(False) >= 1
    assert decoded.count(True) >= (1 if window < 1 << 20 else 0)
    # Every kind of element is there: valid rows, invalid CVEs, the out-of-range scores.
    assert sum(isinstance(row, tuple) for row in expected) > 300
    assert sum(isinstance(row, str) for row in expected) == 6
    # The NvdCve iteration (used by tests and tools) agrees with parse_cve too.
    parsed = [
        cve.diagnostics() if isinstance(cve, InvalidRecord) else (cve.id, cve.last_modified)
        for cve in FeedReader(path)
    ]
    assert parsed == [row if isinstance(row, str) else row[:2] for row in expected]


def test_lone_surrogate_escape_takes_the_stdlib_path(tmp_path: Path) -> None:
    # "\ud800" is valid JSON that msgspec refuses: the run falls back, and the CVE is stored
    # as before (its surrogate sits in a dropped reference, not in what is kept).
    items = [nvd_cve(f"CVE-2024-{n:04d}") for n in range(1, 5)]
    items[1]["cve"]["references"].append({"url": "lone \ud800 surrogate"})
    document = json.dumps({"format": "NVD_CVE", "vulnerabilities": items}, indent=2).encode()
    assert b"\\ud800" in document
    path = tmp_path / "nvdcve-2.0-2024.json"
    path.write_bytes(document)
    assert _fast(path) == _reference(document)
    assert len(_reference(document)) == 4


@pytest.mark.parametrize("window", [1 << 20, 300], ids=["1MiB", "300"])
def test_invalid_utf8_in_a_skipped_field_is_still_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    # msgspec does not look inside the strings it skips; the window is checked as UTF-8 as it
    # is read, so a bad byte in a dropped reference fails the feed as the standard library did.
    monkeypatch.setattr(jsonstream, "_READ", window)
    items = [nvd_cve(f"CVE-2024-{n:04d}") for n in range(1, 40)]
    items[20]["cve"]["references"].append({"url": "BADBYTE"})
    document = _document(items, "pretty").replace(b"BADBYTE", b"bad \xff byte")
    path = tmp_path / "nvdcve-2.0-2024.json"
    path.write_bytes(document)
    with pytest.raises(VulnDBError, match="not UTF-8 JSON"):
        list(FeedReader(path).rows())
