"""source-watcher's copy semantics on real files (kubegate.render.artgen / artglob).

Expectations come from fluxcd/source-watcher ``internal/builder/builder.go`` (function named in
each test), ``merge.go``, ``extract.go``, its spec ``docs/spec/v1beta1/artifactgenerators.md``
("cp-like semantics"), and bmatcuk/doublestar v4's documented patterns (its README's "Patterns"
table and its match tests: ``abc/**`` matches ``abc``, ``**`` matches ``a/b/c``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from kubegate.render.artgen import (
    CopyError,
    CopyOperation,
    OutputArtifact,
    SourceTree,
    build_artifact,
)
from kubegate.render.artglob import BadPattern, compile_doublestar
from kubegate.source.limits import SourceLimits
from tests.fixtures.tarballs import Entry, tar_gz


def _op(source: str, to: str, *exclude: str, strategy: str = "Overwrite") -> CopyOperation:
    return CopyOperation(source, to, tuple(exclude), strategy)


def _build(
    tmp_path: Path,
    files: Mapping[str, str | bytes],
    *ops: CopyOperation,
    limits: SourceLimits | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Build one artifact from source ``src``; (artifact files -> text, provenance map)."""
    src = tmp_path / "src"
    for rel, data in files.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    dest = tmp_path / "work" / "artifact"
    dest.mkdir(parents=True)
    names = build_artifact(
        OutputArtifact("a", ops),
        {"src": SourceTree(src, lambda rel: f"SRC:{rel}")},
        dest,
        limits or SourceLimits(),
    )
    out = {p.relative_to(dest).as_posix(): p.read_text() for p in dest.rglob("*") if p.is_file()}
    return out, names


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("**", "a/b/c", True),
        ("abc/**", "abc", True),  # doublestar's own test: "/**" also matches the directory
        ("abc/**", "abc/x/y", True),
        ("**/testdata/**", "a/testdata/f.yaml", True),
        ("**/testdata/**", "testdata", True),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("path/**.txt", "path/x/y.txt", False),  # mid-segment "**" is "*"
        ("*.md", "a/b.md", False),  # "*" never crosses "/"
        ("{a,b}/*.yaml", "b/x.yaml", True),
        ("[!a]*", "bcd", True),
        ("[^a]*", "abc", False),
        ("[a-c]at", "bat", True),
        ("\\*", "*", True),
        ("f?o", "f/o", False),
    ],
)
def test_doublestar_match(pattern: str, path: str, expected: bool) -> None:
    """shouldExclude uses doublestar.MatchUnvalidated (the README's "Patterns" table)."""
    assert compile_doublestar(pattern).match(path) is expected


def test_hostile_patterns_are_bounded() -> None:
    """Patterns come from the judged revision: matching is linear, braces are capped."""
    started = time.monotonic()
    assert not compile_doublestar("*a" * 400 + "b").match("a" * 3000)
    assert not compile_doublestar("**/" * 200 + "x").match("/".join(["d"] * 300))
    assert time.monotonic() - started < 20  # generous: a backtracking matcher never ends
    with pytest.raises(BadPattern):
        compile_doublestar("{a,b}" * 30)
    with pytest.raises(BadPattern):
        compile_doublestar("[abc")


def test_directory_and_glob_destinations(tmp_path: Path) -> None:
    """applySingleDirectoryCopy (``dir`` -> dest/dir), calculateGlobDestination (``dir/**``
    strips ``dir/``; ``dir/*.yaml`` keeps the match path), fs.Glob (``*`` matches dotfiles
    too, one level only; ``**`` is ``*`` outside Extract)."""
    files = {"cfg/a.yaml": "a", "cfg/sub/b.yaml": "b", "cfg/.hidden.yaml": "h"}
    out, names = _build(
        tmp_path,
        files,
        _op("@src/cfg", "@artifact/one"),
        _op("@src/cfg/**", "@artifact/two/"),
        _op("@src/cfg/*.yaml", "@artifact/three"),
    )
    assert out == {
        "one/cfg/a.yaml": "a",
        "one/cfg/sub/b.yaml": "b",
        "one/cfg/.hidden.yaml": "h",
        "two/a.yaml": "a",
        "two/sub/b.yaml": "b",
        "two/.hidden.yaml": "h",
        "three/cfg/a.yaml": "a",
        "three/cfg/.hidden.yaml": "h",
    }
    assert names["two/sub/b.yaml"] == "SRC:cfg/sub/b.yaml"


def test_file_destinations(tmp_path: Path) -> None:
    """applySingleFileCopy: no trailing slash names the file, unless the destination is an
    existing directory; a trailing slash copies into it; later copies overwrite earlier."""
    files = {"x.yaml": "x", "y.yaml": "y"}
    out, names = _build(
        tmp_path,
        files,
        _op("@src/x.yaml", "@artifact/renamed.yaml"),
        _op("@src/x.yaml", "@artifact/dir/"),
        _op("@src/y.yaml", "@artifact/dir"),
        _op("@src/y.yaml", "@artifact/renamed.yaml"),
    )
    assert out == {"renamed.yaml": "y", "dir/x.yaml": "x", "dir/y.yaml": "y"}
    assert names == {
        "renamed.yaml": "SRC:y.yaml",
        "dir/x.yaml": "SRC:x.yaml",
        "dir/y.yaml": "SRC:y.yaml",
    }


def test_exclude_bases(tmp_path: Path) -> None:
    """shouldExcludePath: the source-relative path, then the path relative to the literal
    prefix (sourceSelectionRoot); a separator-less pattern also matches the base name."""
    files = {
        "apps/web/a.yaml": "a",
        "apps/web/README.md": "r",
        "apps/legacy/old.yaml": "o",
        "apps/web/testdata/t.yaml": "t",
    }
    out, _ = _build(
        tmp_path, files, _op("@src/apps/**", "@artifact/", "*.md", "legacy/**", "**/testdata/**")
    )
    assert out == {"web/a.yaml": "a"}
    # A single excluded file is skipped silently (applySingleFileCopy returns nil).
    out, _ = _build(tmp_path / "2", files, _op("@src/apps/web/README.md", "@artifact/", "*.md"))
    assert out == {}


def test_merge_applies_to_matched_files_not_inside_directories(tmp_path: Path) -> None:
    """shouldMergeFile/mergeFileWithRoots: Merge deep-merges a file onto an existing one (all
    documents of each merged into one map, lists replaced); copyDirWithRoots always
    overwrites, so files inside a copied directory are not merged. A file that is not there
    yet is copied."""
    files = {
        "base/values.yaml": "image:\n  tag: '1.0'\n  repository: nginx\nports: [80, 443]\n",
        "prod/values.yaml": "image:\n  tag: '2.0'\n---\nports: [8080]\n",
        "dirs/one/values.yaml": "a: 1\n",
        "dirs2/one/values.yaml": "b: 2\n",
    }
    out, names = _build(
        tmp_path,
        files,
        _op("@src/base/values.yaml", "@artifact/values.yaml"),
        _op("@src/prod/values.yaml", "@artifact/values.yaml", strategy="Merge"),
        _op("@src/base/values.yaml", "@artifact/fresh.yaml", strategy="Merge"),
        _op("@src/dirs/one", "@artifact/", strategy="Merge"),
        _op("@src/dirs2/one", "@artifact/", strategy="Merge"),
    )
    assert yaml.safe_load(out["values.yaml"]) == {
        "image": {"tag": "2.0", "repository": "nginx"},
        "ports": [8080],
    }
    assert "values.yaml" not in names  # rewritten: no original to point at
    assert out["one/values.yaml"] == "b: 2\n"
    assert names["fresh.yaml"] == "SRC:base/values.yaml"


def test_merge_of_a_non_map_fails(tmp_path: Path) -> None:
    """loadYAML unmarshals each document into a map: a list document fails the build."""
    files = {"a.yaml": "x: 1\n", "b.yaml": "- 1\n- 2\n"}
    with pytest.raises(CopyError, match="not a map"):
        _build(
            tmp_path,
            files,
            _op("@src/a.yaml", "@artifact/v.yaml"),
            _op("@src/b.yaml", "@artifact/v.yaml", strategy="Merge"),
        )


def test_extract(tmp_path: Path) -> None:
    """extract.go: a single tarball must be .tar.gz/.tgz; with a glob (doublestar: ``**``
    recurses) other files are skipped; contents land under the destination. A tarball with a
    ``..`` entry is refused by kubegate's tarball rules (fluxcd/pkg/tar.Untar refuses it too)."""
    chart = tar_gz([Entry("podinfo/Chart.yaml", b"name: podinfo\n")])
    other = tar_gz([Entry("other/values.yaml", b"v: 1\n")])
    files: dict[str, str | bytes] = {
        "charts/podinfo.tgz": chart,
        "charts/nested/other.TAR.GZ": other,
        "charts/readme.txt": "skip",
    }
    out, names = _build(tmp_path, files, _op("@src/charts/**", "@artifact/x", strategy="Extract"))
    assert out == {"x/podinfo/Chart.yaml": "name: podinfo\n", "x/other/values.yaml": "v: 1\n"}
    assert names == {}
    with pytest.raises(CopyError, match="requires tarball"):
        _build(
            tmp_path / "2", files, _op("@src/charts/readme.txt", "@artifact/", strategy="Extract")
        )
    with pytest.raises(CopyError, match="not supported for directories"):
        _build(tmp_path / "3", files, _op("@src/charts", "@artifact/", strategy="Extract"))
    evil = {"evil.tgz": tar_gz([Entry("../../escape.yaml", b"x")])}
    with pytest.raises(CopyError, match="failed to extract"):
        _build(tmp_path / "4", evil, _op("@src/evil.tgz", "@artifact/", strategy="Extract"))
    assert not list(tmp_path.rglob("escape.yaml"))


def test_limits(tmp_path: Path) -> None:
    """A generator copying the same tree again and again is bounded by kubegate's source
    limits (source-watcher has none: it is not judging a hostile revision)."""
    files = {"f.yaml": "x" * 1000}
    ops = [_op("@src/f.yaml", f"@artifact/{i}.yaml") for i in range(20)]
    with pytest.raises(CopyError, match="exceeds"):
        _build(tmp_path, files, *ops, limits=SourceLimits(max_extracted_bytes=10_000))
