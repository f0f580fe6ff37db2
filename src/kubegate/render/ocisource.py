"""OCIRepository sources of Flux Kustomizations: pull, extract safely, label provenance.

A Flux Kustomization whose ``sourceRef`` is an OCIRepository renders from that artifact's layer
(``flux push artifact`` content; Flux's recommended way to ship rendered config). When the
cluster being walked renders the OCIRepository object itself (same namespace/name) and the
caller gave a :class:`~kubegate.render.fetch.SourceFetcher`, the layer is fetched
(``spec.ref`` digest, semver or tag; ``spec.layerSelector.mediaType`` else the first layer;
``spec.insecure``), extracted with the artifact tarball's safety rules
(:func:`kubegate.source.artifact.extract` under :class:`~kubegate.source.limits.SourceLimits`)
into the walk's private workspace, once per manifest digest, and the Kustomization is built
from that tree like Git content. ``layerSelector.operation: copy`` stores the layer as is in
Flux and kustomize-controller unpacks it the same way, so both operations are extracted here.
``spec.ignore`` of an OCIRepository is not applied (the published tree is taken whole).

Otherwise the Kustomization is not seen, with the reason: no fetcher, the object is not
rendered by the revision, or the pull or extraction failed. ``spec.verify`` (cosign/notation
signatures) is not checked by kubegate: a rendered artifact logs a warning saying so, and a
not-seen reason ends with "(spec.verify is not checked)".

Provenance: objects built from an artifact name their files
``oci://HOST/REPO@sha256:<manifest hex>/<path in the artifact>`` (docs/sources.md), so a
reader can tell them from files of the scanned source. Used by the fleet walker
(:mod:`kubegate.render.fleet`), which calls :meth:`OciSources.index`,
:meth:`OciSources.tree` and :meth:`OciSources.relabel`.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kubegate.errors import RenderError, SourceError
from kubegate.models import Origin
from kubegate.render.fetch import ArtifactRequest, SourceFetcher
from kubegate.render.fluxks import FluxKustomization
from kubegate.render.result import ImageLocator, Located, RenderedObject
from kubegate.render.yamlfile import PathStep
from kubegate.source.artifact import extract
from kubegate.source.limits import SourceLimits
from kubegate.source.location import url_without_credentials

_logger = logging.getLogger(__name__)

OCI_KIND = "OCIRepository"
SOURCE_GROUP = "source.toolkit.fluxcd.io"


@dataclass(frozen=True, slots=True)
class OciSource:
    """An OCIRepository object the cluster renders."""

    key: str
    url: str
    ref: Mapping[str, str]
    layer_media_type: str | None
    layer_operation: str
    insecure: bool
    verify: bool
    origin: Origin


def oci_source(
    value: Mapping[str, Any], origin: Origin, default_namespace: str
) -> OciSource | None:
    """The OCIRepository ``value`` defines, or None for any other object."""
    if value.get("kind") != OCI_KIND:
        return None
    if str(value.get("apiVersion", "")).partition("/")[0] != SOURCE_GROUP:
        return None
    metadata = value.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    spec = value.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    ref = spec.get("ref")
    selector = spec.get("layerSelector")
    selector = selector if isinstance(selector, dict) else {}
    media_type = selector.get("mediaType")
    operation = selector.get("operation")
    return OciSource(
        key=f"{metadata.get('namespace') or default_namespace}/{metadata.get('name') or ''}",
        url=str(spec.get("url") or ""),
        ref=(
            {str(k): str(v) for k, v in ref.items() if isinstance(v, str | int | float)}
            if isinstance(ref, dict)
            else {}
        ),
        layer_media_type=media_type if isinstance(media_type, str) and media_type else None,
        layer_operation=operation if operation in ("extract", "copy") else "extract",
        insecure=spec.get("insecure") is True,
        verify=isinstance(spec.get("verify"), dict),
        origin=origin,
    )


@dataclass(frozen=True, slots=True)
class PrefixedLocator:
    """A locator whose file names are prefixed with the artifact they come from."""

    inner: ImageLocator
    prefix: str

    def _origin(self, origin: Origin) -> Origin:
        if origin.file is None:
            return Origin(self.prefix, origin.line)
        return Origin(f"{self.prefix}/{origin.file}", origin.line)

    def document(self) -> Origin:
        """The inner document's origin, prefixed."""
        return self._origin(self.inner.document())

    def locate(self, path: tuple[PathStep, ...]) -> Located:
        """The inner location, prefixed."""
        found = self.inner.locate(path)
        return Located(self._origin(found.origin), found.declared)


@dataclass(slots=True)
class OciSources:
    """The OCIRepositories one cluster walk knows, and the trees pulled from them."""

    fetcher: SourceFetcher | None
    #: Private directory (the walk's workspace) where artifacts are extracted.
    base: Path
    limits: SourceLimits = field(default_factory=SourceLimits)
    repos: dict[str, OciSource] = field(default_factory=dict)
    #: OCIRepository key -> (tree, provenance prefix) or the reason it is not seen.
    pulled: dict[str, tuple[Path, str] | str] = field(default_factory=dict)
    #: Kustomization key -> provenance prefix of the artifact it rendered from.
    built: dict[str, str] = field(default_factory=dict)

    def index(self, value: Mapping[str, Any], origin: Origin, default_namespace: str) -> bool:
        """Remember an OCIRepository the cluster renders; whether ``value`` was one."""
        found = oci_source(value, origin, default_namespace)
        if found is None:
            return False
        self.repos.setdefault(found.key, found)
        return True

    def tree(self, ks: FluxKustomization, key: str, settled: bool) -> Path | str | None:
        """The tree ``ks`` renders from, or why it is not seen (a string); None: wait, the
        OCIRepository may still be rendered by another Kustomization of the cluster."""
        pulled = self.resolve(key, settled)
        if pulled is None or isinstance(pulled, str):
            return pulled
        tree, prefix = pulled
        self.built[ks.key] = prefix
        return tree

    def resolve(self, key: str, settled: bool) -> tuple[Path, str] | str | None:
        """The tree pulled for OCIRepository ``key`` and its provenance prefix, why it is not
        seen, or None (wait); also used for ArtifactGenerator sources (artgen.py)."""
        source = self.repos.get(key)
        if source is None:
            if not settled:
                return None
            return (
                f"its source OCIRepository {key} is not rendered by this revision (it exists "
                "only in the cluster)"
            )
        if key not in self.pulled:
            self.pulled[key] = self._pull(source)
        return self.pulled[key]

    def _pull(self, source: OciSource) -> tuple[Path, str] | str:
        shown = url_without_credentials(source.url)
        where = source.origin.where
        head = f"its source OCIRepository {source.key} ({shown}{', ' + where if where else ''})"
        verify = " (spec.verify is not checked)" if source.verify else ""
        if self.fetcher is None:
            return f"{head} is an OCI artifact and no registry access was given{verify}"
        try:
            fetched = self.fetcher.artifact(
                ArtifactRequest(
                    url=source.url,
                    source=f"OCIRepository {source.key}",
                    ref=source.ref,
                    insecure=source.insecure,
                    layer_media_type=source.layer_media_type,
                    layer_operation="copy" if source.layer_operation == "copy" else "extract",
                    where=where,
                )
            )
        except RenderError as exc:
            return f"{head} could not be pulled: {_reason(exc, source.key)}{verify}"
        digest = fetched.digest
        prefix = f"{shown}@{digest}"
        dest = self.base / "oci" / hashlib.sha256(f"{source.url}@{digest}".encode()).hexdigest()
        if not dest.is_dir():
            staging = Path(tempfile.mkdtemp(prefix="oci-", dir=self.base))
            try:
                extract(fetched.blob, staging, limits=self.limits, label=prefix)
            except SourceError as exc:
                return f"{head}: artifact {fetched.revision} refused: {exc.message}{verify}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(dest)
        if source.verify:
            _logger.warning(
                "OCIRepository %s: spec.verify is not checked by kubegate; %s rendered unverified",
                source.key,
                fetched.revision,
            )
        _logger.info("OCIRepository %s: rendering %s", source.key, fetched.revision)
        return dest, prefix

    def relabel(self, objects: Sequence[RenderedObject]) -> list[RenderedObject]:
        """Objects built from an artifact, their locators prefixed with it."""
        if not self.built:
            return list(objects)
        return [
            replace(obj, locator=PrefixedLocator(obj.locator, prefix))
            if obj.kustomization is not None
            and (prefix := self.built.get(obj.kustomization)) is not None
            else obj
            for obj in objects
        ]


def _reason(exc: RenderError, key: str) -> str:
    text = exc.message
    prefix = f"OCIRepository {key}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
