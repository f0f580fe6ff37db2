"""OCI artifacts as Flux reads them: repository URLs, ``spec.ref`` resolution, manifests, layers.

Read from source-controller: ``internal/controller/ocirepository_controller.go``
(``parseRepository``: the URL names a repository and must not carry a tag;
``getArtifactRef``: ``digest`` wins, then ``semver`` (the highest listed tag satisfying it,
after the ``semverFilter`` regular expression), then ``tag``, default ``latest``;
``convertOCIToSemVerTag``: Helm writes ``+`` as ``_`` in tags, converted only when the layer
media type is Helm's chart layer) and ``internal/helm/repository/oci_chart_repository.go``
(``getChartVersion``: a version that is itself a semver version is used as the tag without
listing; otherwise tags are listed, an exact match wins, else the highest satisfying the
constraint). The layer: the one whose media type is asked for, else (an OCIRepository source)
the first one whatever its type, else (a chart) Helm's chart layer.

Pure functions over what the registry answered; :class:`kubegate.fetch.Fetcher` does the I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubegate.errors import ImageReferenceError, RenderError
from kubegate.fetch.constraints import SemverError, choose, parse_flux_version
from kubegate.images.reference import parse_reference
from kubegate.models import Descriptor, Digest, ImageRef
from kubegate.render.fetch import HELM_CHART_LAYER

OCI_SCHEME = "oci://"
#: Media type of the config blob ``helm push`` writes (the chart's Chart.yaml as JSON).
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
_INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
#: A quantified group that itself holds a quantifier or an alternation (``(a+)+``,
#: ``(a|aa)+``): the shapes whose backtracking explodes in Python's engine (Go's RE2 runs in
#: linear time, so Flux accepts them). Many unbounded quantifiers in a row (``.*.*.*.*x``) cost
#: a polynomial of high degree: more than :data:`_MAX_UNBOUNDED` are refused too.
_NESTED_QUANTIFIER = re.compile(r"\([^()]*[*+}|][^()]*\)\s*[*+{?]")
_UNBOUNDED = re.compile(r"(?<!\\)(?:[*+]|\{\d*,\})")
_MAX_UNBOUNDED = 3
_MAX_FILTER = 256


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a ``spec.ref`` resolved to: the manifest reference (tag or digest) and the tag."""

    reference: str
    tag: str | None


@dataclass(frozen=True, slots=True)
class ArtifactManifest:
    """The parts of an OCI image manifest an artifact pull needs."""

    config: Descriptor
    layers: tuple[Descriptor, ...]


def repository_of(url: str, *, where: str | None) -> ImageRef:
    """The repository ``oci://HOST/PATH`` names (RenderError for a tag, digest or bad name)."""
    if not url.startswith(OCI_SCHEME):
        raise RenderError(f"URL {url[:200]!r} does not start with oci://", where=where)
    rest = url[len(OCI_SCHEME) :].rstrip("/")
    last = rest.rsplit("/", 1)[-1]
    if "@" in rest or ("/" in rest and ":" in last):
        raise RenderError(f"URL {url[:200]!r} must not contain a tag or digest", where=where)
    try:
        ref = parse_reference(rest)
    except ImageReferenceError as exc:
        raise RenderError(
            f"URL {url[:200]!r} is not a repository: {exc.message}", where=where
        ) from exc
    return ImageRef(registry=ref.registry, repository=ref.repository)


def display(ref: ImageRef) -> str:
    """``oci://HOST/PATH`` of a repository, for messages and chart provenance."""
    return f"{OCI_SCHEME}{ref.registry}/{ref.repository}"


def tag_filter(pattern: str | None, *, where: str | None) -> Callable[[str], bool]:
    """``semverFilter`` as Go's ``regexp.MatchString`` (unanchored search).

    The pattern comes from the judged revision: patterns with nested quantifiers (which take
    exponential time in Python's backtracking engine, not in Go's) are refused, not run.
    """
    if not pattern:
        return lambda tag: True
    if (
        len(pattern) > _MAX_FILTER
        or _NESTED_QUANTIFIER.search(pattern)
        or len(_UNBOUNDED.findall(pattern)) > _MAX_UNBOUNDED
    ):
        raise RenderError(
            f"semverFilter {pattern[:80]!r} is too long or could backtrack without bound "
            "(nested or many unbounded quantifiers); not evaluated",
            where=where,
        )
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise RenderError(f"semverFilter {pattern[:80]!r} is invalid: {exc}", where=where) from exc
    return lambda tag: compiled.search(tag) is not None


def ref_digest(ref: Mapping[str, str], *, where: str | None) -> str | None:
    """``spec.ref.digest`` when given (RenderError unless ``sha256:<64 hex>``)."""
    digest = str(ref.get("digest") or "")
    if not digest:
        return None
    if not _DIGEST.fullmatch(digest):
        raise RenderError(f"ref.digest {digest[:80]!r} is not sha256:<64 hex>", where=where)
    return digest


def choose_semver_tag(
    tags: list[str], constraint: str, *, helm_tags: bool, what: str, where: str | None
) -> str:
    """``getTagBySemver``: the highest tag satisfying ``constraint`` (no exact-match rule)."""
    candidates = {(tag.replace("_", "+") if helm_tags else tag): tag for tag in tags}
    chosen = choose(list(candidates), constraint, what=what, where=where, exact_first=False)
    return candidates[chosen]


def chart_tag(
    version: str, list_tags: Callable[[], list[str]], *, what: str, where: str | None
) -> str:
    """The tag of an OCI HelmRepository chart for the ``version`` constraint (Helm's ``+``
    written ``_``); tags are listed only when ``version`` is not itself a version."""
    try:
        parse_flux_version(version)
    except SemverError:
        pass
    else:
        return version.replace("+", "_")
    candidates = {tag.replace("_", "+"): tag for tag in list_tags()}
    if not candidates:
        raise RenderError(f"no tags in the repository of {what}", where=where)
    chosen = choose(list(candidates), version, what=what, where=where)
    return candidates[chosen]


def _descriptor(raw: Any, *, what: str, where: str | None) -> Descriptor:
    if not isinstance(raw, dict):
        raise RenderError(f"manifest {what} is not an object", where=where)
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise RenderError(f"manifest {what} lacks mediaType or digest", where=where)
    if not _DIGEST.fullmatch(digest):
        raise RenderError(f"manifest {what} digest {digest[:80]!r} is not sha256", where=where)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RenderError(f"manifest {what} has an invalid size", where=where)
    return Descriptor(media_type=media_type, digest=Digest(digest), size=size)


def parse_artifact_manifest(data: bytes, *, where: str | None) -> ArtifactManifest:
    """Config and layers of an OCI (or Docker schema2) manifest of any artifact type."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RenderError("manifest is not JSON", where=where) from exc
    if not isinstance(document, dict):
        raise RenderError("manifest is not a JSON object", where=where)
    if document.get("mediaType") in _INDEX_TYPES or "manifests" in document:
        raise RenderError(
            "the reference names an image index, not an artifact manifest", where=where
        )
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise RenderError("manifest has no layers list", where=where)
    return ArtifactManifest(
        config=_descriptor(document.get("config"), what="config", where=where),
        layers=tuple(
            _descriptor(layer, what=f"layer {index}", where=where)
            for index, layer in enumerate(layers)
        ),
    )


def pick_layer(
    manifest: ArtifactManifest, media_type: str | None, *, first_if_unset: bool, where: str | None
) -> Descriptor:
    """The layer of ``media_type``; unset: the first layer (an OCIRepository source) or the
    Helm chart layer (a chart)."""
    wanted = media_type or (None if first_if_unset else HELM_CHART_LAYER)
    if wanted is None:
        if not manifest.layers:
            raise RenderError("artifact has no layers", where=where)
        return manifest.layers[0]
    for layer in manifest.layers:
        if layer.media_type == wanted:
            return layer
    found = ", ".join(sorted({layer.media_type for layer in manifest.layers})) or "none"
    raise RenderError(
        f"artifact has no layer of media type {wanted} (layers: {found[:300]})", where=where
    )


def revision(resolved: Resolved, digest: str) -> str:
    """Flux's OCIRepository revision: ``<tag>@sha256:<hex>``, or the digest alone."""
    return f"{resolved.tag}@{digest}" if resolved.tag else digest
