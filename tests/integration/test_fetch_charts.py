"""kubegate.fetch against real servers: charts made by ``helm create``/``helm package``, an HTTP
HelmRepository indexed by ``helm repo index`` on loopback, charts pushed by ``helm push`` to the
session registry (tests/fixtures/charts.py).

Version choice follows source-controller (exact match, else the highest version satisfying the
constraint, prereleases only when asked for); what kubegate adds is checked too: the index's
digest, size limits, the registry allow-list (a refused registry is never contacted), the cache
by digest and one fetch per distinct chart across threads.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from kubegate.errors import RegistryError, RenderError
from kubegate.fetch import Fetcher
from kubegate.images.reference import parse_reference
from kubegate.models import ImageRef
from kubegate.registry import RegistryClient
from kubegate.render.fetch import HELM_CHART_LAYER, ChartRequest
from kubegate.source.limits import SourceLimits
from tests.fixtures.charts import (
    helm_repository,
    make_chart,
    package_chart,
    push_artifact,
    push_chart,
    sha256_file,
)
from tests.fixtures.httpserve import HTTPServe, Route
from tests.fixtures.registry import RegistryServer, Reply, ScriptedServer, Seen
from tests.fixtures.tarballs import Entry, tar_gz

VERSIONS = ("1.0.0", "1.1.0", "2.0.0-rc.1")


@dataclass(frozen=True)
class Packaged:
    archives: dict[str, Path]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    """The chart ``app`` at three versions (one a prerelease), packaged once."""
    base = tmp_path_factory.mktemp("charts")
    archives = {}
    for version in VERSIONS:
        chart = make_chart(base / f"src-{version}", "app", version, image=f"nginx:{version}")
        archives[version] = package_chart(chart, base / "pkg")
    return Packaged(archives)


@pytest.fixture
def repo_url(http_serve: HTTPServe, tmp_path: Path, packaged: Packaged) -> str:
    return helm_repository(http_serve, tmp_path / "repo", list(packaged.archives.values()))


@pytest.fixture
def client() -> Iterator[RegistryClient]:
    with RegistryClient() as registry_client:
        yield registry_client


def _request(url: str, version: str = "*", chart: str = "app") -> ChartRequest:
    return ChartRequest(
        "helm-repository",
        url,
        "HelmRepository flux-system/charts",
        chart=chart,
        version=version,
        where="clusters/prod/repo.yaml:3",
    )


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ("*", "1.1.0"),  # the latest stable: the prerelease is excluded
        ("", "1.1.0"),
        ("~1.0", "1.0.0"),
        (">=1.0.0 <2.0.0", "1.1.0"),
        ("2.0.0-rc.1", "2.0.0-rc.1"),  # an exact match wins
        (">=2.0.0-0", "2.0.0-rc.1"),  # a prerelease in the constraint admits prereleases
    ],
)
def test_http_repository_version_choice(
    repo_url: str,
    client: RegistryClient,
    tmp_path: Path,
    packaged: Packaged,
    constraint: str,
    expected: str,
) -> None:
    with Fetcher(client, cache_dir=tmp_path / "cache", limits=SourceLimits()) as fetcher:
        fetched = fetcher.chart(_request(repo_url, constraint))
    digest = sha256_file(packaged.archives[expected])
    assert fetched.info.name == "app"
    assert fetched.info.version == expected
    assert fetched.info.digest == digest
    assert fetched.info.source == repo_url
    assert fetched.archive == tmp_path / "cache" / "charts" / "sha256" / f"{digest[7:]}.tgz"
    assert sha256_file(fetched.archive) == digest


def test_no_matching_version(repo_url: str, client: RegistryClient, tmp_path: Path) -> None:
    with Fetcher(client, cache_dir=tmp_path, limits=SourceLimits()) as fetcher:
        with pytest.raises(RenderError, match="no version of chart 'app' matches '>=9'"):
            fetcher.chart(_request(repo_url, ">=9"))
        with pytest.raises(RenderError, match="no chart 'other' in the repository index"):
            fetcher.chart(_request(repo_url, chart="other"))


def test_http_repository_cache_and_one_fetch_across_threads(
    repo_url: str, client: RegistryClient, tmp_path: Path, http_serve: HTTPServe
) -> None:
    cache = tmp_path / "cache"
    with Fetcher(client, cache_dir=cache, limits=SourceLimits()) as fetcher:
        results: list[Path] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(fetcher.chart(_request(repo_url)).archive)
            )
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(set(results)) == 1 and len(results) == 8
    assert http_serve.requests["/index.yaml"] == 1
    assert http_serve.requests["/app-1.1.0.tgz"] == 1
    # A new run re-reads the index (a chart version may have been added) but not the chart.
    with Fetcher(client, cache_dir=cache, limits=SourceLimits()) as fetcher:
        assert fetcher.chart(_request(repo_url)).archive == results[0]
    assert http_serve.requests["/index.yaml"] == 2
    assert http_serve.requests["/app-1.1.0.tgz"] == 1
    # The parsed index of those bytes was kept (and read instead of parsing the YAML again).
    assert len(list((cache / "helm-index" / "sha256").glob("*.json"))) == 1
    # A cached file that no longer hashes to its name is fetched again, not trusted.
    results[0].write_bytes(b"tampered")
    with Fetcher(client, cache_dir=cache, limits=SourceLimits()) as fetcher:
        again = fetcher.chart(_request(repo_url)).archive
    assert http_serve.requests["/app-1.1.0.tgz"] == 2
    assert again.read_bytes() != b"tampered"


def test_private_cache_dir_is_removed_on_close(repo_url: str, client: RegistryClient) -> None:
    fetcher = Fetcher(client, cache_dir=None, limits=SourceLimits())
    archive = fetcher.chart(_request(repo_url)).archive
    assert archive.is_file()
    fetcher.close()
    assert not fetcher.cache_dir.exists()


def test_index_digest_mismatch_is_refused(
    http_serve: HTTPServe, tmp_path: Path, packaged: Packaged, client: RegistryClient
) -> None:
    url = helm_repository(http_serve, tmp_path / "repo", [packaged.archives["1.0.0"]])
    index = tmp_path / "repo" / "index.yaml"
    real = sha256_file(packaged.archives["1.0.0"])[7:]
    index.write_text(index.read_text().replace(real, "ab" * 32))
    cache = tmp_path / "cache"
    with (
        Fetcher(client, cache_dir=cache, limits=SourceLimits()) as fetcher,
        pytest.raises(RenderError) as caught,
    ):
        fetcher.chart(_request(url))
    message = caught.value.diagnostics()
    assert message.startswith("clusters/prod/repo.yaml:3: HelmRepository flux-system/charts: ")
    assert f"digest mismatch: expected sha256:{'ab' * 32}, got sha256:{real}" in message
    assert "\n" not in message
    assert not list((cache / "charts" / "sha256").iterdir())
    # A digest YAML reads as a number (all digits) is not a usable digest: refused, not skipped.
    index.write_text(index.read_text().replace("ab" * 32, "1" * 64))
    with (
        Fetcher(client, cache_dir=cache, limits=SourceLimits()) as fetcher,
        pytest.raises(RenderError, match="unsupported digest"),
    ):
        fetcher.chart(_request(url))


def test_oversized_chart_and_index_are_refused(
    repo_url: str, client: RegistryClient, tmp_path: Path, http_serve: HTTPServe
) -> None:
    small = SourceLimits(max_artifact_bytes=512)
    with Fetcher(client, cache_dir=tmp_path / "c", limits=small) as fetcher:
        with pytest.raises(RenderError, match="is larger than the 512-byte limit"):
            fetcher.chart(_request(repo_url))
    # An index declaring more than 64 MiB is refused before its body is read.
    http_serve.add(
        "/huge/index.yaml", b"apiVersion: v1\n", headers={"Content-Length": str(65 << 20)}
    )
    with Fetcher(client, cache_dir=tmp_path / "d", limits=SourceLimits()) as fetcher:
        with pytest.raises(RenderError, match=f"larger than the {64 << 20}-byte limit"):
            fetcher.chart(_request(http_serve.url("huge")))


def test_hostile_index_is_one_line_error(
    http_serve: HTTPServe, client: RegistryClient, tmp_path: Path
) -> None:
    http_serve.add("/bomb/index.yaml", b"a: &a [*a, *a]\napiVersion: v1\n")
    http_serve.add("/notyaml/index.yaml", b"apiVersion: [\n")
    http_serve.add("/empty/index.yaml", b"")
    with Fetcher(client, cache_dir=tmp_path / "c", limits=SourceLimits()) as fetcher:
        for path, reason in (
            ("bomb", "index is not valid YAML"),
            ("notyaml", "index is not valid YAML"),
            ("empty", "index is empty"),
            ("missing", "HTTP 404"),
        ):
            with pytest.raises(RenderError, match=reason) as caught:
                fetcher.chart(_request(http_serve.url(path)))
            assert "\n" not in caught.value.diagnostics()


def test_credentials_in_the_repository_url_are_never_shown(
    http_serve: HTTPServe, client: RegistryClient, tmp_path: Path
) -> None:
    url = http_serve.url("/").replace("http://", "http://user:s3cret@").rstrip("/") + "/none"
    with Fetcher(client, cache_dir=tmp_path / "c", limits=SourceLimits()) as fetcher:
        with pytest.raises(RenderError) as caught:
            fetcher.chart(_request(url))
    assert "s3cret" not in caught.value.diagnostics()


def test_index_parse_of_5000_entries(tmp_path: Path) -> None:
    """A large public index (5,000 chart versions) parses through kubegate.yamlload; the time is
    printed for the report, not asserted (a loaded CI machine)."""
    import time

    from kubegate.fetch.helmindex import dump_parsed, load_parsed, parse_index, select

    lines = ["apiVersion: v1", "entries:"]
    for chart in range(50):
        lines.append(f"  chart{chart}:")
        for minor in range(100):
            lines += [
                "  - apiVersion: v2",
                f"    appVersion: 1.{minor}.0",
                '    created: "2026-01-01T00:00:00.000000000Z"',
                f"    description: Chart number {chart}, a longer description line as real ones",
                f"    digest: {hashlib.sha256(f'{chart}-{minor}'.encode()).hexdigest()}",
                "    home: https://example.invalid/charts",
                "    keywords: [web, server]",
                "    maintainers:",
                "    - name: someone",
                "      email: someone@example.invalid",
                f"    name: chart{chart}",
                "    type: application",
                "    urls:",
                f"    - https://example.invalid/chart{chart}-1.{minor}.0.tgz",
                f"    version: 1.{minor}.0",
            ]
    data = ("\n".join(lines) + "\n").encode()
    started = time.monotonic()
    index = parse_index(data, shown="index", where=None)
    elapsed = time.monotonic() - started
    print(f"\nindex of {len(data)} bytes, 5000 entries parsed in {elapsed:.2f}s")
    assert sum(len(v) for v in index.values()) == 5000
    assert select(index, "chart7", "~1.42", shown="index", where=None).version == "1.42.0"
    # What a warm run reads instead when the index bytes did not change.
    started = time.monotonic()
    again = load_parsed(dump_parsed(index))
    print(f"parsed form written and read back in {time.monotonic() - started:.2f}s")
    assert again == index
    assert load_parsed(b"not json") is None
    assert load_parsed(b'{"x": [[1]]}') is None


# -- OCI HelmRepository and OCIRepository charts ------------------------------------------------


@pytest.fixture(scope="module")
def oci_charts(registry_plain: RegistryServer, packaged: Packaged) -> dict[str, str]:
    """The three versions pushed by ``helm push`` to ``charts/app``: version -> digest."""
    return {
        version: push_chart(registry_plain, archive, "fetchtest")
        for version, archive in packaged.archives.items()
    }


def _oci_request(registry: RegistryServer, version: str) -> ChartRequest:
    return ChartRequest(
        "oci-helm-repository",
        f"oci://{registry.host}/fetchtest",
        "HelmRepository flux-system/oci",
        chart="app",
        version=version,
    )


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [("*", "1.1.0"), ("~1.0", "1.0.0"), ("1.0.0", "1.0.0"), (">=2.0.0-0", "2.0.0-rc.1")],
)
def test_oci_helm_repository(
    registry_plain: RegistryServer,
    oci_charts: dict[str, str],
    packaged: Packaged,
    client: RegistryClient,
    tmp_path: Path,
    constraint: str,
    expected: str,
) -> None:
    with Fetcher(client, cache_dir=tmp_path, limits=SourceLimits()) as fetcher:
        fetched = fetcher.chart(_oci_request(registry_plain, constraint))
    assert fetched.info.version == expected
    assert fetched.info.name == "app"
    assert fetched.info.source == f"oci://{registry_plain.host}/fetchtest/app"
    # The chart layer helm push wrote is the packaged archive itself.
    assert fetched.info.digest == sha256_file(packaged.archives[expected])
    assert sha256_file(fetched.archive) == fetched.info.digest


def test_oci_repository_chart_ref(
    registry_plain: RegistryServer,
    oci_charts: dict[str, str],
    client: RegistryClient,
    tmp_path: Path,
) -> None:
    url = f"oci://{registry_plain.host}/fetchtest/app"
    with Fetcher(client, cache_dir=tmp_path, limits=SourceLimits()) as fetcher:
        by_semver = fetcher.chart(
            ChartRequest(
                "oci-repository",
                url,
                "OCIRepository flux-system/app",
                ref={"semver": ">=1.0.0 <2.0.0"},
                layer_media_type=HELM_CHART_LAYER,
            )
        )
        by_digest = fetcher.chart(
            ChartRequest(
                "oci-repository",
                url,
                "OCIRepository flux-system/app",
                ref={"digest": oci_charts["1.0.0"], "tag": "1.1.0"},
            )
        )
        with pytest.raises(RenderError, match="manifest unknown"):
            fetcher.chart(
                ChartRequest("oci-repository", url, "OCIRepository flux-system/app")
            )  # no tag: "latest", which helm push never writes
    # Name and version come from the chart's metadata (Helm's config blob).
    assert (by_semver.info.name, by_semver.info.version) == ("app", "1.1.0")
    assert (by_digest.info.name, by_digest.info.version) == ("app", "1.0.0")


def test_disallowed_registry_is_never_contacted(
    scripted_server: Callable[..., ScriptedServer], client: RegistryClient, tmp_path: Path
) -> None:
    server = scripted_server(lambda seen: Reply(200, b"{}"))
    asked: list[ImageRef] = []

    def allowed(ref: ImageRef) -> bool:
        asked.append(ref)
        return False

    with Fetcher(client, cache_dir=tmp_path, limits=SourceLimits(), allowed=allowed) as fetcher:
        for request in (
            ChartRequest(
                "oci-helm-repository",
                f"oci://{server.host}/charts",
                "HelmRepository a/b",
                chart="app",
                version="~1",
            ),
            ChartRequest("oci-repository", f"oci://{server.host}/app", "OCIRepository a/c"),
        ):
            with pytest.raises(RenderError) as caught:
                fetcher.chart(request)
            assert f"registry {server.host} is not in the allowed registries" in str(
                caught.value.diagnostics()
            )
    assert server.seen == []
    assert [ref.registry for ref in asked] == [server.host, server.host]


def test_oci_chart_without_chart_layer(
    registry_plain: RegistryServer, client: RegistryClient, tmp_path: Path
) -> None:
    push_artifact(
        registry_plain, "fetchtest/notachart", "1.0.0", [("application/octet-stream", b"x")]
    )
    with Fetcher(client, cache_dir=tmp_path, limits=SourceLimits()) as fetcher:
        with pytest.raises(
            RenderError, match=re.escape(f"no layer of media type {HELM_CHART_LAYER}")
        ):
            fetcher.chart(
                ChartRequest(
                    "oci-helm-repository",
                    f"oci://{registry_plain.host}/fetchtest",
                    "HelmRepository a/b",
                    chart="notachart",
                    version="1.0.0",
                )
            )


# -- RegistryClient.list_tags --------------------------------------------------------------------


def test_list_tags_of_a_real_registry(
    registry_plain: RegistryServer, client: RegistryClient
) -> None:
    tags = ["1.0.0", "1.0.1", "1.1.0", "2.0.0", "v2.1.0"]
    for tag in tags:
        push_artifact(registry_plain, "fetchtest/paged", tag, [("application/octet-stream", b"p")])
    ref = parse_reference(f"{registry_plain.host}/fetchtest/paged")
    assert sorted(client.list_tags(ref)) == sorted(tags)
    with pytest.raises(RegistryError, match="more than 3 tags"):
        client.list_tags(ref, max_tags=3)


def _paged_registry(pages: int) -> Callable[[Seen], Reply]:
    """A registry answering ``tags/list`` in pages of two tags with ``Link`` headers, as the
    distribution spec describes (Distribution 2.8, the session registry, ignores ``n``)."""
    all_tags = [f"1.{index}.0" for index in range(2 * pages)]

    def route(seen: Seen) -> Reply:
        if seen.path == "/v2/":
            return Reply(200, b"{}")
        query = parse_qs(urlsplit(seen.path).query)
        last = query.get("last", [None])[0]
        start = 0 if last is None else all_tags.index(last) + 1
        page = all_tags[start : start + 2]
        headers = {}
        if start + 2 < len(all_tags):
            headers["Link"] = f'</v2/x/tags/list?n=2&last={page[-1]}>; rel="next"'
        body = json.dumps({"name": "x", "tags": page}).encode()
        return Reply(200, body, headers)

    return route


def test_list_tags_follows_pagination(
    scripted_server: Callable[..., ScriptedServer], client: RegistryClient
) -> None:
    server = scripted_server(_paged_registry(3))
    ref = parse_reference(f"{server.host}/x")
    assert client.list_tags(ref, page_size=2) == [f"1.{i}.0" for i in range(6)]
    assert [s.path for s in server.seen][1:] == [
        "/v2/x/tags/list?n=2",
        "/v2/x/tags/list?n=2&last=1.1.0",
        "/v2/x/tags/list?n=2&last=1.3.0",
    ]
    with pytest.raises(RegistryError, match="longer than 2 pages"):
        client.list_tags(ref, page_size=2, max_pages=2)


def test_list_tags_refuses_a_next_page_elsewhere(
    scripted_server: Callable[..., ScriptedServer], client: RegistryClient
) -> None:
    def route(seen: Seen) -> Reply:
        if seen.path == "/v2/":
            return Reply(200, b"{}")
        return Reply(
            200,
            b'{"name": "x", "tags": ["1.0.0"]}',
            {"Link": '<http://192.0.2.1/v2/x/tags/list?n=2&last=1.0.0>; rel="next"'},
        )

    server = scripted_server(route)
    with pytest.raises(RegistryError, match="next page on another origin"):
        client.list_tags(parse_reference(f"{server.host}/x"))
    assert [s.path for s in server.seen] == ["/v2/", "/v2/x/tags/list?n=1000"]


def test_oci_helm_build_metadata_tags(
    registry_plain: RegistryServer, client: RegistryClient, tmp_path: Path
) -> None:
    """Helm writes ``+`` as ``_`` in tags; versions are chosen and reported with ``+``."""
    chart = make_chart(tmp_path / "src", "meta", "1.2.0+build.7", image="nginx:1.2.0")
    archive = package_chart(chart, tmp_path / "pkg")
    push_chart(registry_plain, archive, "fetchmeta")
    ref = parse_reference(f"{registry_plain.host}/fetchmeta/meta")
    assert client.list_tags(ref) == ["1.2.0_build.7"]
    with Fetcher(client, cache_dir=tmp_path / "c", limits=SourceLimits()) as fetcher:
        for constraint in ("~1.2", "1.2.0+build.7"):
            fetched = fetcher.chart(
                ChartRequest(
                    "oci-helm-repository",
                    f"oci://{registry_plain.host}/fetchmeta",
                    "HelmRepository a/meta",
                    chart="meta",
                    version=constraint,
                )
            )
            assert fetched.info.version == "1.2.0+build.7"
            assert fetched.info.digest == sha256_file(archive)


def test_deadline_passed(repo_url: str, client: RegistryClient, tmp_path: Path) -> None:
    import time

    with Fetcher(
        client, cache_dir=tmp_path, limits=SourceLimits(), deadline=time.monotonic() - 1
    ) as fetcher:
        with pytest.raises(RenderError, match=r"deadline \(--timeout\) passed"):
            fetcher.chart(_request(repo_url))


def test_insecure_uses_its_own_client(client: RegistryClient, tmp_path: Path) -> None:
    """``spec.insecure`` adds that one registry to a separate client's insecure list; the
    caller's client (which pulls the images) is left as it was."""
    repo = ImageRef("registry.example.invalid:5000", "charts/app")
    with Fetcher(client, cache_dir=tmp_path, limits=SourceLimits()) as fetcher:
        assert fetcher._registry_client(repo, False, "s", None) is client
        insecure = fetcher._registry_client(repo, True, "s", None)
        assert insecure is not client
        assert insecure is fetcher._registry_client(repo, True, "s", None)
        assert insecure.options.insecure_registries == {"registry.example.invalid:5000"}
    assert client.options.insecure_registries == frozenset()


def test_oci_repository_chart_metadata_from_the_archive(
    registry_plain: RegistryServer, client: RegistryClient, tmp_path: Path, packaged: Packaged
) -> None:
    """A chart pushed without Helm's config blob (as ``flux push artifact`` would): name and
    version come from ``<chart>/Chart.yaml`` in the archive; an archive without one, or a
    layer larger than the limit, is refused."""
    archive = packaged.archives["1.1.0"].read_bytes()
    push_artifact(registry_plain, "fetchtest/plain", "v1", [(HELM_CHART_LAYER, archive)])
    bare = tar_gz([Entry("app/values.yaml", b"image: {}\n")])
    push_artifact(registry_plain, "fetchtest/plain", "bare", [(HELM_CHART_LAYER, bare)])
    url = f"oci://{registry_plain.host}/fetchtest/plain"
    with Fetcher(client, cache_dir=tmp_path / "a", limits=SourceLimits()) as fetcher:
        fetched = fetcher.chart(
            ChartRequest("oci-repository", url, "OCIRepository a/plain", ref={"tag": "v1"})
        )
        assert (fetched.info.name, fetched.info.version) == ("app", "1.1.0")
        with pytest.raises(RenderError, match=r"holds no <chart>/Chart\.yaml"):
            fetcher.chart(
                ChartRequest("oci-repository", url, "OCIRepository a/plain", ref={"tag": "bare"})
            )
    with Fetcher(client, cache_dir=tmp_path / "b", limits=SourceLimits(max_artifact_bytes=64)) as f:
        with pytest.raises(RenderError, match="exceeds the 64-byte limit"):
            f.chart(ChartRequest("oci-repository", url, "OCIRepository a/plain", ref={"tag": "v1"}))


def test_shared_failure_names_each_asker(
    http_serve: HTTPServe, client: RegistryClient, tmp_path: Path
) -> None:
    """Two HelmRepository objects with one URL share the fetch, not the blame."""
    url = http_serve.url("gone")
    with Fetcher(client, cache_dir=tmp_path, limits=SourceLimits()) as fetcher:
        messages = []
        for name, where in (("a", "a.yaml:1"), ("b", "b.yaml:7")):
            with pytest.raises(RenderError) as caught:
                fetcher.chart(
                    ChartRequest(
                        "helm-repository",
                        url,
                        f"HelmRepository ns/{name}",
                        chart="app",
                        where=where,
                    )
                )
            messages.append(caught.value.diagnostics())
    assert http_serve.requests["/gone/index.yaml"] == 1
    assert messages == [
        f"a.yaml:1: HelmRepository ns/a: fetching {url}/index.yaml failed: HTTP 404",
        f"b.yaml:7: HelmRepository ns/b: fetching {url}/index.yaml failed: HTTP 404",
    ]


def test_a_stalled_repository_ends_on_the_idle_timeout(
    http_serve: HTTPServe, client: RegistryClient, tmp_path: Path
) -> None:
    http_serve.routes["/slow/index.yaml"] = Route(b"apiVersion: v1\n", delay=3)
    limits = SourceLimits(http_timeout=0.5)
    with Fetcher(client, cache_dir=tmp_path, limits=limits) as fetcher:
        with pytest.raises(RenderError, match=r"failed: timed out after 0\.5s without data"):
            fetcher.chart(_request(http_serve.url("slow")))
