"""Micro-benchmark of the version comparators: compares per second, per scheme.

Run: ``PYTHONPATH=src python bench/versions.py``. The pairs come from the shared version vectors
(``../shared/data/version-vectors/``) when present, else from a small synthetic set. The
baselines measured in the same run are the libraries a naive matcher would call per comparison
(python-debian's ``version_compare``, ``packaging.version.Version`` parsed per call); the ratio
printed is ours / baseline. The first pass over the pairs fills the parse caches (cold); the
matcher's steady state is the warm figure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from debian.debian_support import version_compare
from packaging.version import InvalidVersion, Version

from kubegate.match.versions import comparator_for

VECTORS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "version-vectors"
_LINE = re.compile(r"^(.+?) [<=>] (.+)$")

_SYNTHETIC = {
    "debian": [
        (f"1.{i}.{j}-{k}+deb12u1", f"1.{j}.{i}~rc{k}-1")
        for i in range(9)
        for j in range(9)
        for k in range(3)
    ],
    "pypi": [
        (f"1.{i}.{j}rc{k}", f"1.{j}.{i}.post{k}")
        for i in range(9)
        for j in range(9)
        for k in range(3)
    ],
}


def _pairs(prefix: str) -> list[tuple[str, str]]:
    path = VECTORS / f"{prefix}-versions-generated.txt"
    if not path.is_file():
        return _SYNTHETIC.get(prefix, [])
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _LINE.match(line.strip())
        if match and not line.startswith(("#", "//")):
            pairs.append((match[1], match[2]))
    return pairs


def _rate(compare: Callable[[str, str], int], pairs: list[tuple[str, str]], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        for a, b in pairs:
            compare(a, b)
    return rounds * len(pairs) / (time.perf_counter() - start)


def _packaging_compare(a: str, b: str) -> int:
    try:
        left, right = Version(a), Version(b)
    except InvalidVersion:
        return 0
    return (left > right) - (left < right)


def main() -> None:
    """Print compares/s per scheme, with the baselines' ratios."""
    baselines: dict[str, Callable[[str, str], int]] = {
        "debian": version_compare,
        "pypi": _packaging_compare,
    }
    rows = [
        ("debian", "Debian:12"),
        ("pypi", "PyPI"),
        ("alpine", "Alpine:v3.19"),
        ("maven", "Maven"),
        ("rubygems", "RubyGems"),
        ("packagist", "Packagist"),
    ]
    print(f"{'scheme':<10} {'pairs':>6} {'cold/s':>10} {'warm/s':>10} {'baseline/s':>11} ratio")
    for prefix, ecosystem in rows:
        comparator = comparator_for(ecosystem)
        pairs = _pairs(prefix)
        if comparator is None or not pairs:
            continue
        cold = _rate(comparator.compare, pairs, 1)
        warm = _rate(comparator.compare, pairs, 3)
        baseline = baselines.get(prefix)
        if baseline is None:
            print(f"{comparator.name:<10} {len(pairs):>6} {cold:>10.0f} {warm:>10.0f}")
            continue
        base = _rate(baseline, pairs, 1)
        print(
            f"{comparator.name:<10} {len(pairs):>6} {cold:>10.0f} {warm:>10.0f} {base:>11.0f} "
            f"{warm / base:.1f}x"
        )


if __name__ == "__main__":
    main()
