"""Flux Kustomizations reading an ExternalArtifact that an ArtifactGenerator of the revision builds.

The generator shapes are source-watcher's own examples (fluxcd/source-watcher
``docs/spec/v1beta1/artifactgenerators.md`` "Source Decomposition Example", and
``config/testdata/decomposition/generators.yaml``): ``source.extensions.fluxcd.io/v1beta1``
ArtifactGenerator, ``spec.sources[]`` (alias/kind/name), ``spec.artifacts[]`` (name, copy
``from: "@alias/glob"``, ``to: "@artifact/path"``, ``exclude``, ``strategy``), and Flux
Kustomizations with ``sourceRef: {kind: ExternalArtifact, name: <artifact>}`` in the
generator's namespace. Each test names the source-watcher function whose behaviour it checks
(``internal/builder/builder.go`` unless said otherwise). Real kustomize builds the artifact.
"""

from __future__ import annotations

from pathlib import Path

from kubegate.fetch import Fetcher
from kubegate.images.find import find_images
from kubegate.models import ImageUse
from kubegate.registry import RegistryClient
from kubegate.render import RenderResult, render
from kubegate.source.limits import SourceLimits
from tests.fixtures.charts import push_flux_artifact
from tests.fixtures.fleets import bootstrap, write
from tests.fixtures.registry import RegistryServer

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: NAME
  namespace: apps
spec:
  selector:
    matchLabels: {app: NAME}
  template:
    metadata:
      labels: {app: NAME}
    spec:
      containers:
        - name: NAME
          image: IMAGE
"""
IMAGE_LINE = 15
GENERATOR = """apiVersion: source.extensions.fluxcd.io/v1beta1
kind: ArtifactGenerator
metadata:
  name: my-app
  namespace: flux-system
spec:
  sources:
    - alias: repo
      kind: GitRepository
      name: flux-system
SOURCES  artifacts:
ARTIFACTS"""
KS = """---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: NAME
  namespace: flux-system
spec:
  interval: 30m
  sourceRef:
    kind: ExternalArtifact
    name: NAME
  path: PATH
  prune: true
"""


def _deploy(name: str, image: str) -> str:
    return DEPLOY.replace("NAME", name).replace("IMAGE", image)


def _fleet(
    root: Path,
    artifacts: str,
    files: dict[str, str],
    kustomizations: dict[str, str],
    sources: str = "",
) -> Path:
    """clusters/prod bootstrapped; the generator and its Kustomizations beside the sync."""
    text = GENERATOR.replace("SOURCES", sources).replace("ARTIFACTS", artifacts)
    for name, path in kustomizations.items():
        text += KS.replace("NAME", name).replace("PATH", path)
    return write(root, {**bootstrap("prod"), "clusters/prod/generator.yaml": text, **files})


def _uses(result: RenderResult) -> dict[str, ImageUse]:
    return {u.name: u for u in find_images(result.objects).uses}


def _reasons(result: RenderResult) -> dict[str, str]:
    return {f"{n.namespace}/{n.name}": n.reason for n in result.not_seen}


APPS = {
    "deploy/frontend/deploy.yaml": _deploy("frontend", "nginx:1.27.0"),
    "deploy/backend/deploy.yaml": _deploy("backend", "redis:7.2.4"),
    "deploy/backend/kustomization.yaml": "resources:\n  - deploy.yaml\n",
}


def test_two_artifacts_from_one_git_repository(tmp_path: Path) -> None:
    """The issue's fixture (source-watcher's decomposition example). ``frontend/**`` strips the
    directory (calculateGlobDestination); ``backend/`` without a glob copies the directory as
    a subdirectory of the destination (applySingleDirectoryCopy: ``cp -r backend dest``).
    Both name ExternalArtifacts after the artifact in the generator's namespace
    (artifactgenerator_controller.go, the ExternalArtifact's ObjectMeta)."""
    artifacts = """    - name: frontend
      originRevision: "@repo"
      copy:
        - from: "@repo/deploy/frontend/**"
          to: "@artifact/"
    - name: backend
      copy:
        - from: "@repo/deploy/backend/"
          to: "@artifact/"
"""
    root = _fleet(tmp_path / "repo", artifacts, APPS, {"frontend": "./", "backend": "./backend"})
    result = render(root)
    assert not result.problems, result.problems
    assert not result.not_seen, result.not_seen
    uses = _uses(result)
    assert str(uses["frontend"].ref) == "docker.io/library/nginx:1.27.0"
    assert str(uses["backend"].ref) == "docker.io/library/redis:7.2.4"
    assert uses["frontend"].kustomization == "flux-system/frontend"
    assert uses["backend"].kustomization == "flux-system/backend"
    assert uses["backend"].cluster == "clusters/prod"
    # Provenance: the files were copied whole, so they name the scanned source's originals.
    assert uses["frontend"].origin.file == "deploy/frontend/deploy.yaml"
    assert uses["frontend"].origin.line == IMAGE_LINE
    assert uses["backend"].origin.file == "deploy/backend/deploy.yaml"
    assert uses["backend"].origin.line == IMAGE_LINE


def test_glob_with_exclude(tmp_path: Path) -> None:
    """``exclude`` (shouldExcludePath / shouldExclude): ``*.md`` (no separator) matches the
    base name at any depth, ``**/testdata/**`` the source-relative path, ``legacy/**`` the path
    relative to the from-pattern's literal prefix (sourceSelectionRoot); an excluded directory
    is skipped whole inside a copied directory (copyDirWithRoots). Without the exclusions the
    generated kustomization would include the test and legacy manifests."""
    files = {
        "deploy/apps/web/deploy.yaml": _deploy("web", "nginx:1.27.0"),
        "deploy/apps/web/testdata/deploy.yaml": _deploy("fixture", "busybox:test"),
        "deploy/apps/legacy/deploy.yaml": _deploy("legacy", "nginx:1.14"),
        "deploy/apps/README.md": "# not a manifest\n",
    }
    artifacts = """    - name: apps
      copy:
        - from: "@repo/deploy/apps/**"
          to: "@artifact/"
          exclude: ["*.md", "**/testdata/**", "legacy/**"]
"""
    root = _fleet(tmp_path / "repo", artifacts, files, {"apps": "./"})
    result = render(root)
    assert not result.problems, result.problems
    assert not result.not_seen, result.not_seen
    uses = _uses(result)
    assert set(uses) == {"web"}
    assert uses["web"].origin.file == "deploy/apps/web/deploy.yaml"


def test_file_to_file_copy_and_into_an_existing_directory(tmp_path: Path) -> None:
    """applySingleFileCopy: a file copied to ``@artifact/app/web.yaml`` (no trailing slash)
    takes that name; copied to ``@artifact/app`` (an existing directory, no slash) or
    ``@artifact/app/`` it keeps its own name. Copies run in order (applyCopyOperations)."""
    files = {
        "src/one.yaml": _deploy("one", "nginx:1.27.0"),
        "src/two.yaml": _deploy("two", "redis:7.2.4"),
        "src/three.yaml": _deploy("three", "memcached:1.6"),
        "src/kust.yaml": "resources:\n  - web.yaml\n  - two.yaml\n  - three.yaml\n",
    }
    artifacts = """    - name: web
      copy:
        - from: "@repo/src/one.yaml"
          to: "@artifact/app/web.yaml"
        - from: "@repo/src/two.yaml"
          to: "@artifact/app"
        - from: "@repo/src/three.yaml"
          to: "@artifact/app/"
        - from: "@repo/src/kust.yaml"
          to: "@artifact/app/kustomization.yaml"
"""
    root = _fleet(tmp_path / "repo", artifacts, files, {"web": "./app"})
    result = render(root)
    assert not result.problems, result.problems
    assert not result.not_seen, result.not_seen
    uses = _uses(result)
    assert uses["one"].origin.file == "src/one.yaml"
    assert uses["two"].origin.file == "src/two.yaml"
    assert uses["three"].origin.file == "src/three.yaml"
    assert uses["one"].origin.line == IMAGE_LINE


def test_merge_strategy(tmp_path: Path) -> None:
    """``strategy: Merge`` (shouldMergeFile, mergeFileWithRoots; merge.go mergeMap): the
    second file is deep-merged into the first (maps merged key by key, lists replaced whole,
    as Helm merges values files). The merged file has no original: it is named
    ``ExternalArtifact NS/NAME:<path>``."""
    overlay = """spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.27.1
"""
    files = {"base/web.yaml": _deploy("web", "nginx:1.25.0"), "prod/web.yaml": overlay}
    artifacts = """    - name: web
      copy:
        - from: "@repo/base/web.yaml"
          to: "@artifact/web.yaml"
        - from: "@repo/prod/web.yaml"
          to: "@artifact/web.yaml"
          strategy: Merge
"""
    root = _fleet(tmp_path / "repo", artifacts, files, {"web": "./"})
    result = render(root)
    assert not result.problems, result.problems
    assert not result.not_seen, result.not_seen
    (deploy,) = [o for o in result.objects if o.kind == "Deployment"]
    assert deploy.value["spec"]["replicas"] == 3
    assert deploy.value["metadata"]["name"] == "web"  # kept from the base
    assert deploy.value["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    uses = _uses(result)
    assert str(uses["web"].ref) == "docker.io/library/nginx:1.27.1"
    assert uses["web"].origin.file == "ExternalArtifact flux-system/web:web.yaml"


def test_missing_or_unreadable_sources_are_not_seen(tmp_path: Path) -> None:
    """observeSources (artifactgenerator_controller.go) needs every source ready; one another
    repository holds (never fetched from the revision's URL), a Bucket, or an ExternalArtifact
    no generator of the revision produces: the Kustomization is not seen, with the reason."""
    other = """---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: other
  namespace: flux-system
spec:
  url: https://git.example.com/other.git
"""
    sources = """    - alias: other
      kind: GitRepository
      name: other
    - alias: bucket
      kind: Bucket
      name: assets
"""
    artifacts = """    - name: mixed
      copy:
        - from: "@other/deploy/**"
          to: "@artifact/"
"""
    root = _fleet(
        tmp_path / "repo", artifacts, APPS, {"mixed": "./", "ghost": "./"}, sources=sources
    )
    (root / "clusters/prod/other.yaml").write_text(other)
    result = render(root)
    assert not result.problems, result.problems
    reasons = _reasons(result)
    assert (
        "source other (GitRepository flux-system/other) is another repository"
        in (reasons["flux-system/mixed"])
    )
    assert "--source flux-system/other=" in reasons["flux-system/mixed"]
    assert "clusters/prod/generator.yaml:1" in reasons["flux-system/mixed"]
    assert "is not produced by an ArtifactGenerator" in reasons["flux-system/ghost"]
    assert not _uses(result)

    # Supplied with --source, the GitRepository is read; the Bucket still is not.
    supplied = write(tmp_path / "other", {"deploy/web.yaml": _deploy("web", "nginx:1.27.0")})
    result = render(root, sources={"flux-system/other": supplied})
    assert (
        "source bucket (Bucket flux-system/assets) is a Bucket"
        in (_reasons(result)["flux-system/mixed"])
    )


def test_supplied_source(tmp_path: Path) -> None:
    """A ``--source`` GitRepository is a source like the scanned one; its files are named
    relative to that source's root, as Kustomizations reading it name them."""
    sources = """    - alias: other
      kind: GitRepository
      name: other
"""
    artifacts = """    - name: web
      copy:
        - from: "@other/deploy/*.yaml"
          to: "@artifact/"
"""
    root = _fleet(tmp_path / "repo", artifacts, {}, {"web": "./deploy"}, sources=sources)
    supplied = write(tmp_path / "other", {"deploy/web.yaml": _deploy("web", "nginx:1.27.0")})
    result = render(root, sources={"flux-system/other": supplied})
    assert not result.problems, result.problems
    assert not result.not_seen, result.not_seen
    # "deploy/*.yaml" keeps the match path (calculateGlobDestination): deploy/web.yaml.
    assert _uses(result)["web"].origin.file == "deploy/web.yaml"


def test_paths_leaving_the_artifact_or_source_are_refused(tmp_path: Path) -> None:
    """A ``to`` with ``..`` or an absolute one: source-watcher writes through ``os.Root``
    (copyRegularFileWithRoots), which refuses a path escaping the staging directory, so the
    artifact is never built. A ``from`` with ``..`` likewise (``os.Root`` on the source).
    kubegate refuses every ``..`` component; nothing is written outside the artifact."""
    files = {"deploy/web.yaml": _deploy("web", "nginx:1.27.0")}
    artifacts = """    - name: up
      copy:
        - from: "@repo/deploy/web.yaml"
          to: "@artifact/../../escaped.yaml"
    - name: absolute
      copy:
        - from: "@repo/deploy/*.yaml"
          to: "@artifact//tmp/escaped/"
    - name: out
      copy:
        - from: "@repo/../deploy/web.yaml"
          to: "@artifact/"
"""
    root = _fleet(tmp_path / "repo", artifacts, files, {"up": "./", "absolute": "./", "out": "./"})
    result = render(root)
    reasons = _reasons(result)
    assert "leaves the artifact" in reasons["flux-system/up"]
    assert "leaves the artifact" in reasons["flux-system/absolute"]
    assert "leaves the source" in reasons["flux-system/out"]
    assert not _uses(result)
    assert not list(tmp_path.rglob("escaped*"))
    assert not Path("/tmp/escaped").exists()


def test_bad_globs_and_strategies_are_not_seen(tmp_path: Path) -> None:
    """A glob that matches nothing or only excluded files, a malformed glob
    (applyCopyOperation's errors), a brace pattern expanding past kubegate's bound, and a
    strategy outside the CRD's enum (Overwrite;Merge;Extract): never built, not seen."""
    files = {"deploy/web.yaml": _deploy("web", "nginx:1.27.0")}
    braces = "{a,b}" * 12
    artifacts = f"""    - name: nomatch
      copy:
        - from: "@repo/deploy/*.json"
          to: "@artifact/"
    - name: excluded
      copy:
        - from: "@repo/deploy/*.yaml"
          to: "@artifact/"
          exclude: ["web.yaml"]
    - name: malformed
      copy:
        - from: "@repo/deploy/[a-"
          to: "@artifact/"
    - name: braces
      copy:
        - from: "@repo/deploy/*.yaml"
          to: "@artifact/"
          exclude: ["{braces}"]
"""
    names = ("nomatch", "excluded", "malformed", "braces")
    root = _fleet(tmp_path / "repo", artifacts, files, dict.fromkeys(names, "./"))
    result = render(root)
    reasons = _reasons(result)
    assert "no files match pattern 'deploy/*.json'" in reasons["flux-system/nomatch"]
    assert "were excluded" in reasons["flux-system/excluded"]
    assert "invalid glob pattern" in reasons["flux-system/malformed"]
    assert "invalid exclude pattern" in reasons["flux-system/braces"]
    assert not _uses(result)

    # The API server refuses a generator whose strategy is outside the enum: every
    # artifact of it is not seen, the valid ones too.
    artifacts = """    - name: strategy
      copy:
        - from: "@repo/deploy/web.yaml"
          to: "@artifact/"
          strategy: Append
    - name: fine
      copy:
        - from: "@repo/deploy/web.yaml"
          to: "@artifact/"
"""
    root = _fleet(tmp_path / "two", artifacts, files, {"strategy": "./", "fine": "./"})
    reasons = _reasons(render(root))
    assert "copy strategy 'Append' is unknown" in reasons["flux-system/strategy"]
    assert "copy strategy 'Append' is unknown" in reasons["flux-system/fine"]


def test_oci_repository_source(tmp_path: Path, registry_plain: RegistryServer) -> None:
    """An OCIRepository source (``flux push artifact`` content in the loopback registry) is
    pulled as for a Kustomization (ocisource.py) and copied from like Git content, the
    docs' composition example (a chart from OCI, values from Git, ``strategy: Merge`` for
    values): here manifests from both. Files copied from the artifact name it by digest."""
    pushed = write(tmp_path / "pushed", {"web/deploy.yaml": _deploy("web", "nginx:1.27.0")})
    digest = push_flux_artifact(registry_plain, "artgen/apps", "1.0.0", pushed)
    url = f"oci://{registry_plain.host}/artgen/apps"
    oci = f"""---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: apps
  namespace: flux-system
spec:
  url: {url}
  ref: {{tag: 1.0.0}}
"""
    sources = """    - alias: oci
      kind: OCIRepository
      name: apps
"""
    artifacts = """    - name: mixed
      copy:
        - from: "@oci/web/"
          to: "@artifact/"
        - from: "@repo/deploy/backend/deploy.yaml"
          to: "@artifact/backend.yaml"
"""
    root = _fleet(tmp_path / "repo", artifacts, APPS, {"mixed": "./"}, sources=sources)
    (root / "clusters/prod/oci.yaml").write_text(oci)
    assert "no registry access" in _reasons(render(root))["flux-system/mixed"]
    with (
        RegistryClient() as client,
        Fetcher(client, cache_dir=tmp_path / "cache", limits=SourceLimits()) as fetcher,
    ):
        result = render(root, fetcher=fetcher)
    assert not result.problems, result.problems
    assert not result.not_seen, result.not_seen
    uses = _uses(result)
    assert uses["web"].origin.file == f"{url}@{digest}/web/deploy.yaml"
    assert uses["web"].origin.line == IMAGE_LINE
    assert uses["backend"].origin.file == "deploy/backend/deploy.yaml"


def test_generator_rendered_by_another_kustomization(tmp_path: Path) -> None:
    """The generator is often applied by its own Kustomization (``infra/generators``) while the
    Kustomization reading its ExternalArtifact is met first: it waits until the walk has
    rendered everything else, as a Kustomization waits for its GitRepository."""
    artifacts = """    - name: frontend
      copy:
        - from: "@repo/deploy/frontend/**"
          to: "@artifact/"
"""
    generator = GENERATOR.replace("SOURCES", "").replace("ARTIFACTS", artifacts)
    infra = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: generators
  namespace: flux-system
spec:
  interval: 10m
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./infra/generators
  prune: true
"""
    files = {
        **bootstrap("prod"),
        **APPS,
        "clusters/prod/a-frontend.yaml": KS.replace("NAME", "frontend").replace("PATH", "./"),
        "clusters/prod/z-infra.yaml": infra,
        "infra/generators/generator.yaml": generator,
    }
    result = render(write(tmp_path / "repo", files))
    assert not result.problems, result.problems
    assert not result.not_seen, result.not_seen
    use = _uses(result)["frontend"]
    assert use.origin.file == "deploy/frontend/deploy.yaml"
    assert use.kustomization == "flux-system/frontend"
