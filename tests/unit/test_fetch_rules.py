"""Pure rules of kubegate.fetch: OCI URLs, ``semverFilter``, manifests and layers, Helm chart
URL resolution (Helm's ``repo.ResolveReferenceURL``) and index entries.

Shapes come from source-controller (``ocirepository_controller.go`` ``parseRepository``,
``filterTags``; ``chart_repository.go``) and Helm (``pkg/repo/index.go``
``ResolveReferenceURL``): see the module docstrings of kubegate.fetch.oci and .helmindex.
"""

from __future__ import annotations

import json
import time

import pytest

from kubegate.errors import RenderError
from kubegate.fetch import helmindex, oci
from kubegate.models import ImageRef

DIGEST = "sha256:" + "a" * 64


def test_repository_urls() -> None:
    assert oci.repository_of("oci://ghcr.io/org/app", where=None) == ImageRef("ghcr.io", "org/app")
    assert oci.repository_of("oci://127.0.0.1:5000/charts/app/", where=None) == ImageRef(
        "127.0.0.1:5000", "charts/app"
    )
    for bad, reason in (
        ("https://ghcr.io/org/app", "does not start with oci://"),
        ("oci://ghcr.io/org/app:1.0", "must not contain a tag"),
        (f"oci://ghcr.io/org/app@{DIGEST}", "must not contain a tag"),
        ("oci://ghcr.io/Org/App", "not a repository"),
    ):
        with pytest.raises(RenderError, match=reason):
            oci.repository_of(bad, where="x.yaml:1")


def test_semver_filter_is_a_search_and_hostile_patterns_are_refused() -> None:
    keep = oci.tag_filter("-rc", where=None)
    assert [t for t in ("1.0.0", "1.0.0-rc.1", "rc") if keep(t)] == ["1.0.0-rc.1"]
    assert oci.tag_filter("", where=None)("anything")
    assert oci.tag_filter(".*-rc.*", where=None)("1.0.0-rc.1")  # Flux's documented example
    for hostile in ("(a+)+$", "(a*)*b", "(x+x+)+y", "(a|aa)+$", ".*.*.*.*x", "a" * 300):
        with pytest.raises(RenderError, match="not evaluated"):
            oci.tag_filter(hostile, where=None)
    with pytest.raises(RenderError, match="is invalid"):
        oci.tag_filter("(", where=None)
    started = time.monotonic()
    assert oci.tag_filter(r"^v?\d+\.\d+\.\d+$", where=None)("1.2.3")
    assert time.monotonic() - started < 5


def _manifest(layers: list[str]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "config": {"mediaType": "application/x-config", "digest": DIGEST, "size": 2},
            "layers": [{"mediaType": m, "digest": DIGEST, "size": 1} for m in layers],
        }
    ).encode()


def test_layers() -> None:
    manifest = oci.parse_artifact_manifest(_manifest(["a", "b"]), where=None)
    assert oci.pick_layer(manifest, None, first_if_unset=True, where=None).media_type == "a"
    assert oci.pick_layer(manifest, "b", first_if_unset=True, where=None).media_type == "b"
    with pytest.raises(RenderError, match=r"no layer of media type application/vnd\.cncf\.helm"):
        oci.pick_layer(manifest, None, first_if_unset=False, where=None)
    empty = oci.parse_artifact_manifest(_manifest([]), where=None)
    with pytest.raises(RenderError, match="artifact has no layers"):
        oci.pick_layer(empty, None, first_if_unset=True, where=None)
    with pytest.raises(RenderError, match="image index"):
        oci.parse_artifact_manifest(b'{"manifests": []}', where=None)
    with pytest.raises(RenderError, match="not JSON"):
        oci.parse_artifact_manifest(b"\xff", where=None)
    bad = _manifest(["a"]).replace(DIGEST.encode(), b"sha256:nothex")
    with pytest.raises(RenderError, match="is not sha256"):
        oci.parse_artifact_manifest(bad, where=None)


def test_refs_and_revisions() -> None:
    assert oci.ref_digest({"digest": DIGEST, "tag": "x"}, where=None) == DIGEST
    assert oci.ref_digest({"tag": "x"}, where=None) is None
    with pytest.raises(RenderError, match="not sha256"):
        oci.ref_digest({"digest": "sha256:abc"}, where=None)
    assert oci.revision(oci.Resolved("v1", "v1"), DIGEST) == f"v1@{DIGEST}"
    assert oci.revision(oci.Resolved(DIGEST, None), DIGEST) == DIGEST
    tags = ["1.0.0", "1.1.0_build.2", "1.1.0", "2.0.0-rc.1", "latest"]
    assert oci.choose_semver_tag(tags, "~1.1", helm_tags=False, what="x", where=None) == "1.1.0"
    chosen = oci.choose_semver_tag(
        ["1.0.0", "1.1.0_b.2"], "~1.1", helm_tags=True, what="x", where=None
    )
    assert chosen == "1.1.0_b.2"

    listed: list[bool] = []

    def list_tags() -> list[str]:
        listed.append(True)
        return tags

    # A version is used as the tag without listing (source-controller's shortcut).
    assert oci.chart_tag("1.5.0+meta", list_tags, what="x", where=None) == "1.5.0_meta"
    assert not listed
    assert oci.chart_tag("^1", list_tags, what="x", where=None) == "1.1.0_build.2"
    assert listed


@pytest.mark.parametrize(
    ("repository", "reference", "expected"),
    [
        ("https://charts.example/", "app-1.0.0.tgz", "https://charts.example/app-1.0.0.tgz"),
        ("https://charts.example/sub", "app.tgz", "https://charts.example/sub/app.tgz"),
        ("https://charts.example/sub/", "../x/app.tgz", "https://charts.example/x/app.tgz"),
        ("https://charts.example/sub?tok=1", "app.tgz", "https://charts.example/sub/app.tgz?tok=1"),
        ("https://charts.example/", "https://cdn.example/app.tgz", "https://cdn.example/app.tgz"),
        ("https://u:p@charts.example/", "app.tgz", "https://u:p@charts.example/app.tgz"),
    ],
)
def test_chart_url_resolution(repository: str, reference: str, expected: str) -> None:
    assert helmindex.resolve_chart_url(repository, reference, None) == expected


def test_chart_url_refusals_and_index_url() -> None:
    for reference in ("file:///etc/passwd", "oci://x/y", "gopher://x/y"):
        with pytest.raises(RenderError, match="is not http"):
            helmindex.resolve_chart_url("https://charts.example/", reference, None)
    assert helmindex.index_url("https://h/charts/?x=1") == "https://h/charts/index.yaml?x=1"
    for url in ("ftp://h/x", "oci://h/x", "https:///x", "http://h:99999/"):
        with pytest.raises(RenderError):
            helmindex.check_repository_url(url, None)


def test_index_entries_as_helm_validates_them() -> None:
    index = helmindex.parse_index(
        b"""apiVersion: v1
entries:
  app:
  - {name: app, version: 1.0.0, urls: [a.tgz], digest: SHA256:%s}
  - {name: app, version: not-a-version, urls: [b.tgz]}
  - {version: 1.1.0, urls: [c.tgz]}
  - {name: app, version: 1.2.0, urls: [d.tgz], digest: 1234}
  - just a string
"""
        % (b"A" * 64),
        shown="i",
        where=None,
    )
    entries = {e.version: e for e in index["app"]}
    assert set(entries) == {"1.0.0", "1.1.0", "1.2.0"}
    assert entries["1.0.0"].digest == "sha256:" + "a" * 64
    assert entries["1.1.0"].name == "app" and entries["1.1.0"].digest is None
    assert entries["1.2.0"].digest == "1234"  # YAML read it as a number: kept, then refused
    with pytest.raises(RenderError, match="no apiVersion"):
        helmindex.parse_index(b"entries: {}", shown="i", where=None)
