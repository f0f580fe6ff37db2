"""Flux Kustomizations sourced from an OCIRepository, rendered through the fleet walk.

The artifacts are pushed to the session registry in the format ``flux push artifact`` writes
(kubegate's own publish code, tests/fixtures/charts.py ``push_flux_artifact``), or as
hand-made manifests for layer selection and hostile tarballs. The OCIRepository object is part
of the revision (beside a bootstrap sync), as fleets write it:
``spec.url``/``spec.ref`` (tag, semver + semverFilter, digest), ``spec.layerSelector``.
The real kustomize builds what the real registry served; kubegate.fetch pulls it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubegate.fetch import Fetcher
from kubegate.images.find import find_images
from kubegate.models import ImageUse
from kubegate.registry import RegistryClient
from kubegate.render import RenderResult, render
from kubegate.source.limits import SourceLimits
from tests.fixtures.charts import push_artifact, push_flux_artifact
from tests.fixtures.fleets import bootstrap, write
from tests.fixtures.registry import ForwardingProxy, RegistryServer, Reply, Seen
from tests.fixtures.tarballs import Entry, tar_gz

FLUX_CONTENT = "application/vnd.cncf.flux.content.v1.tar+gzip"
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: IMAGE
"""
IMAGE_LINE = 15
SOURCE = """apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 5m
  url: URL
  ref: REF
EXTRA---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  sourceRef:
    kind: OCIRepository
    name: apps
  path: ./web
  prune: true
"""


def _fleet(root: Path, url: str, ref: str, extra: str = "") -> Path:
    text = SOURCE.replace("URL", url).replace("REF", ref).replace("EXTRA", extra)
    return write(root, {**bootstrap("prod"), "clusters/prod/apps.yaml": text})


def _tree(directory: Path, image: str) -> Path:
    return write(directory, {"web/deploy.yaml": DEPLOYMENT.replace("IMAGE", image)})


@pytest.fixture(scope="module")
def pushed(
    registry_plain: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """``fleet/apps`` at tags 1.0.0, 1.1.0, 2.0.0-rc.1 and ``latest``: tag -> manifest digest."""
    base = tmp_path_factory.mktemp("artifacts")
    digests = {}
    for tag, image in (
        ("1.0.0", "nginx:1.0.0"),
        ("1.1.0", "nginx:1.1.0"),
        ("2.0.0-rc.1", "nginx:2.0.0-rc.1"),
        ("latest", "nginx:latest-build"),
    ):
        digests[tag] = push_flux_artifact(
            registry_plain, "fleet/apps", tag, _tree(base / tag, image)
        )
    return digests


@pytest.fixture
def fetcher(tmp_path: Path) -> Iterator[Fetcher]:
    with (
        RegistryClient() as client,
        Fetcher(client, cache_dir=tmp_path / "cache", limits=SourceLimits()) as made,
    ):
        yield made


def _images(result: RenderResult) -> list[ImageUse]:
    return list(find_images(result.objects).uses)


def _render(root: Path, fetcher: Fetcher | None) -> tuple[RenderResult, list[ImageUse]]:
    result = render(root, fetcher=fetcher)
    assert not result.problems, result.problems
    return result, _images(result)


@pytest.mark.parametrize(
    ("ref", "tag"),
    [
        ("{tag: 1.0.0}", "1.0.0"),
        ("{}", "latest"),  # no tag: source-controller's default
        ('{semver: ">=1.0.0"}', "1.1.0"),  # the highest stable
        ('{semver: ">=1.0.0-0", semverFilter: "-rc"}', "2.0.0-rc.1"),
        ('{semver: "~1.0", tag: "1.1.0"}', "1.0.0"),  # semver wins over tag
    ],
)
def test_ref_tag_and_semver(
    tmp_path: Path,
    registry_plain: RegistryServer,
    pushed: dict[str, str],
    fetcher: Fetcher,
    ref: str,
    tag: str,
) -> None:
    url = f"oci://{registry_plain.host}/fleet/apps"
    _, uses = _render(_fleet(tmp_path / "repo", url, ref), fetcher)
    web = [u for u in uses if u.name == "web"]
    assert len(web) == 1
    use = web[0]
    expected = {"latest": "latest-build"}.get(tag, tag)
    assert str(use.ref) == f"docker.io/library/nginx:{expected}"
    assert use.kustomization == "flux-system/apps"
    assert use.cluster == "clusters/prod"
    # Provenance names the artifact (manifest digest) and the file inside it.
    assert use.origin.file == f"{url}@{pushed[tag]}/web/deploy.yaml"
    assert use.origin.line == IMAGE_LINE


def test_digest_wins(
    tmp_path: Path, registry_plain: RegistryServer, pushed: dict[str, str], fetcher: Fetcher
) -> None:
    url = f"oci://{registry_plain.host}/fleet/apps"
    ref = f'{{digest: "{pushed["1.0.0"]}", semver: ">=1", tag: "1.1.0"}}'
    _, uses = _render(_fleet(tmp_path / "repo", url, ref), fetcher)
    assert [str(u.ref) for u in uses] == ["docker.io/library/nginx:1.0.0"]
    assert uses[0].origin.file == f"{url}@{pushed['1.0.0']}/web/deploy.yaml"
    # A digest the registry does not hold: not seen, the tag is not used instead.
    absent = "sha256:" + "0" * 64
    ref = f'{{digest: "{absent}", tag: "1.1.0"}}'
    result = render(_fleet(tmp_path / "absent", url, ref), fetcher=fetcher)
    (unseen,) = [n for n in result.not_seen if n.name == "apps"]
    assert "could not be pulled" in unseen.reason
    assert "manifest unknown" in unseen.reason
    assert _images(result) == []


def test_layer_selector_and_first_layer(
    tmp_path: Path, registry_plain: RegistryServer, fetcher: Fetcher
) -> None:
    first = tar_gz([Entry("web/deploy.yaml", DEPLOYMENT.replace("IMAGE", "first:1").encode())])
    second = tar_gz([Entry("web/deploy.yaml", DEPLOYMENT.replace("IMAGE", "second:2").encode())])
    push_artifact(
        registry_plain,
        "fleet/layers",
        "v1",
        [("application/vnd.example.first.tar+gzip", first), (FLUX_CONTENT, second)],
    )
    url = f"oci://{registry_plain.host}/fleet/layers"
    # Without layerSelector: the first layer, whatever its media type (source-controller).
    _, uses = _render(_fleet(tmp_path / "a", url, "{tag: v1}"), fetcher)
    assert [str(u.ref) for u in uses] == ["docker.io/library/first:1"]
    selector = f"  layerSelector:\n    mediaType: {FLUX_CONTENT}\n    operation: extract\n"
    _, uses = _render(_fleet(tmp_path / "b", url, "{tag: v1}", selector), fetcher)
    assert [str(u.ref) for u in uses] == ["docker.io/library/second:2"]
    missing = "  layerSelector:\n    mediaType: application/x-none\n"
    result = render(_fleet(tmp_path / "c", url, "{tag: v1}", missing), fetcher=fetcher)
    (unseen,) = [n for n in result.not_seen if n.name == "apps"]
    assert "no layer of media type application/x-none" in unseen.reason


def test_hostile_tarball_is_not_seen_and_writes_nothing_outside(
    tmp_path: Path, registry_plain: RegistryServer, fetcher: Fetcher
) -> None:
    hostile = tar_gz(
        [
            Entry("web/deploy.yaml", DEPLOYMENT.replace("IMAGE", "evil:1").encode()),
            Entry("../../escaped.yaml", b"kind: ConfigMap\n"),
        ]
    )
    push_artifact(registry_plain, "fleet/hostile", "v1", [(FLUX_CONTENT, hostile)])
    root = _fleet(tmp_path / "repo", f"oci://{registry_plain.host}/fleet/hostile", "{tag: v1}")
    result = render(root, fetcher=fetcher)
    (unseen,) = [n for n in result.not_seen if n.name == "apps"]
    assert unseen.kind == "Kustomization"
    assert "artifact v1@sha256:" in unseen.reason
    assert "path contains '..'" in unseen.reason
    assert _images(result) == []
    assert not list(tmp_path.rglob("escaped.yaml"))


def test_wrong_layer_digest_is_not_seen(
    tmp_path: Path, registry_plain: RegistryServer, pushed: dict[str, str], fetcher: Fetcher
) -> None:
    """A registry (here a proxy in front of the real one) serving other bytes for the layer."""

    def tamper(seen: Seen) -> Reply | None:
        if seen.method == "GET" and "/blobs/" in seen.path:
            return Reply(200, tar_gz([Entry("web/deploy.yaml", b"kind: ConfigMap\n")]))
        return None

    proxy = ForwardingProxy(registry_plain.url, tamper)
    try:
        root = _fleet(tmp_path / "repo", f"oci://{proxy.host}/fleet/apps", "{tag: 1.0.0}")
        result = render(root, fetcher=fetcher)
    finally:
        proxy.stop()
    (unseen,) = [n for n in result.not_seen if n.name == "apps"]
    assert "could not be pulled" in unseen.reason
    assert "digest mismatch" in unseen.reason
    assert _images(result) == []


def test_without_fetcher_or_source_object(
    tmp_path: Path, registry_plain: RegistryServer, pushed: dict[str, str]
) -> None:
    url = f"oci://{registry_plain.host}/fleet/apps"
    verify = "  verify:\n    provider: cosign\n"
    result = render(_fleet(tmp_path / "a", url, "{tag: 1.0.0}", verify), fetcher=None)
    (unseen,) = [n for n in result.not_seen if n.name == "apps"]
    assert unseen.reason == (
        f"its source OCIRepository flux-system/apps ({url}, clusters/prod/apps.yaml:1) is an "
        "OCI artifact and no registry access was given (spec.verify is not checked)"
    )
    # The OCIRepository lives only in the cluster: nothing to pull from.
    root = write(
        tmp_path / "b",
        {
            **bootstrap("prod"),
            "clusters/prod/apps.yaml": SOURCE.split("---\n", 1)[1],
        },
    )
    result = render(root, fetcher=None)
    (unseen,) = [n for n in result.not_seen if n.name == "apps"]
    assert "OCIRepository flux-system/apps is not rendered by this revision" in unseen.reason


def test_disallowed_registry_is_not_seen(
    tmp_path: Path, registry_plain: RegistryServer, pushed: dict[str, str]
) -> None:
    url = f"oci://{registry_plain.host}/fleet/apps"
    with (
        RegistryClient() as client,
        Fetcher(
            client, cache_dir=None, limits=SourceLimits(), allowed=lambda ref: False
        ) as refusing,
    ):
        result = render(_fleet(tmp_path / "repo", url, "{tag: 1.0.0}"), fetcher=refusing)
    (unseen,) = [n for n in result.not_seen if n.name == "apps"]
    assert f"registry {registry_plain.host} is not in the allowed registries" in unseen.reason


def test_artifact_revision_and_cache(
    registry_plain: RegistryServer, pushed: dict[str, str], fetcher: Fetcher
) -> None:
    from kubegate.render.fetch import ArtifactRequest

    url = f"oci://{registry_plain.host}/fleet/apps"
    by_tag = fetcher.artifact(ArtifactRequest(url, "OCIRepository a/b", {"tag": "1.1.0"}))
    by_digest = fetcher.artifact(
        ArtifactRequest(url, "OCIRepository a/b", {"digest": pushed["1.1.0"]})
    )
    assert by_tag.digest == by_digest.digest == pushed["1.1.0"]
    assert by_tag.revision == f"1.1.0@{pushed['1.1.0']}"
    assert by_digest.revision == pushed["1.1.0"]
    assert by_tag.blob == by_digest.blob
    hexpart = hashlib.sha256(by_tag.blob.read_bytes()).hexdigest()
    assert by_tag.blob == fetcher.cache_dir / "oci-layers" / "sha256" / hexpart
