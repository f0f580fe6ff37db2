"""Every comparator against the shared version-ordering vectors (osv-scalibr's test data).

The vectors live next to the repository (``../shared/data/version-vectors/``) and are never
copied in; the tests skip with the reason when the folder is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kubegate.match.versions import COMPARATORS, VersionComparator

VECTORS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "version-vectors"

#: Vector file prefix → comparator ``name`` (README of the vectors folder).
SCHEME_OF_FILE = {
    "alpine": "apk",
    "debian": "dpkg",
    "redhat": "rpm",
    "pypi": "pep440",
    "maven": "maven",
    "semver": "semver",
    "rubygems": "rubygems",
    "nuget": "nuget",
    "packagist": "packagist",
    "pub": "pub",
    "cran": "cran",
    "hackage": "hackage",
}

_LINE = re.compile(r"^(?P<a>.+?) (?P<op>[<=>]) (?P<b>.+)$")
_SIGN = {"<": -1, "=": 0, ">": 1}


def _vector_files() -> list[str]:
    if not VECTORS.is_dir():
        # One placeholder, so the skip below reports where the vectors were looked for.
        return ["(absent)"]
    return sorted(path.name for path in VECTORS.glob("*-versions*.txt"))


def _comparator(name: str) -> VersionComparator:
    matches = [comparator for comparator in COMPARATORS if comparator.name == name]
    assert len(matches) == 1, f"no comparator named {name!r}"
    return matches[0]


def read_vectors(path: Path) -> list[tuple[int, str, int, str]]:
    """``(line number, a, expected sign, b)`` for every comparison line of a vector file."""
    vectors: list[tuple[int, str, int, str]] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "//")):
            continue
        match = _LINE.match(line)
        assert match, f"{path.name}:{number}: unparsable vector line {raw!r}"
        vectors.append((number, match["a"], _SIGN[match["op"]], match["b"]))
    return vectors


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


@pytest.mark.skipif(not VECTORS.is_dir(), reason=f"version vectors not found at {VECTORS}")
def test_every_vector_file_has_a_scheme() -> None:
    files = _vector_files()
    assert files, f"no vector files in {VECTORS}"
    unknown = {name.split("-versions")[0] for name in files} - set(SCHEME_OF_FILE)
    assert not unknown, f"vector files without a comparator mapping: {sorted(unknown)}"


@pytest.mark.skipif(not VECTORS.is_dir(), reason=f"version vectors not found at {VECTORS}")
@pytest.mark.parametrize("file_name", _vector_files())
def test_comparator_passes_vector_file(file_name: str) -> None:
    comparator = _comparator(SCHEME_OF_FILE[file_name.split("-versions")[0]])
    vectors = read_vectors(VECTORS / file_name)
    assert vectors, f"{file_name} holds no comparisons"
    failures: list[str] = []
    for number, a, expected, b in vectors:
        forward = _sign(comparator.compare(a, b))
        backward = _sign(comparator.compare(b, a))
        if forward != expected or backward != -expected:
            failures.append(
                f"{file_name}:{number}: {a} vs {b}: expected {expected}, got {forward}/{-backward}"
            )
    assert not failures, f"{len(failures)} of {len(vectors)} failed:\n" + "\n".join(failures[:25])
