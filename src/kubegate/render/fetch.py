"""What rendering asks of the network: charts and OCI artifacts, behind one protocol.

The render layer never imports the registry client (DESIGN.md section 1): HelmRelease charts
(HTTP(S) and OCI HelmRepositories, OCIRepository ``chartRef``) and OCIRepository sources of Flux
Kustomizations are fetched by a :class:`SourceFetcher` that the caller hands to
:func:`kubegate.render.render`. ``kubegate.fetch`` implements it on kubegate's own HTTP and
registry stack (timeouts, retries, auth, mirrors, ``--allowed-registries``, size limits, digests
verified, a cache by digest). Without a fetcher, what needs one is listed as not seen.

A fetcher raises :class:`kubegate.errors.RenderError` with a one-line reason (no traceback, no
credentials) when a request cannot be met; the caller turns that into a not-seen entry or a
problem naming the object that asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from kubegate.models import ChartInfo

#: Media type of a Helm chart layer in an OCI artifact (Helm's own ``helm push``).
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
#: Media type of the content layer ``flux push artifact`` writes.
FLUX_CONTENT_LAYER = "application/vnd.cncf.flux.content.v1.tar+gzip"


@dataclass(frozen=True, slots=True)
class ChartRequest:
    """One chart a HelmRelease asks for, through the source object it names.

    ``kind``:

    - ``helm-repository``: an HTTP(S) HelmRepository; ``url`` is its ``spec.url``, ``chart`` the
      chart name, ``version`` the semver constraint (``*`` by default; an exact match in
      ``index.yaml`` wins, else the highest version satisfying it, as source-controller does).
    - ``oci-helm-repository``: a ``type: oci`` HelmRepository; ``url`` is ``oci://HOST/PATH``,
      the chart is ``<url>/<chart>``, tags listed from the registry and chosen like above.
    - ``oci-repository``: an OCIRepository ``chartRef``; ``url`` names the chart itself and
      ``ref`` is its ``spec.ref`` (``tag``, ``semver``, ``semverFilter``, ``digest``); the layer
      is ``layer_media_type`` (``spec.layerSelector.mediaType``), else the Helm chart layer.
    """

    kind: Literal["helm-repository", "oci-helm-repository", "oci-repository"]
    url: str
    #: ``KIND namespace/name`` of the source object (for messages).
    source: str
    chart: str = ""
    version: str = "*"
    ref: Mapping[str, str] = field(default_factory=dict)
    #: ``spec.insecure`` (plain HTTP to an OCI registry); HTTP HelmRepositories may be http://.
    insecure: bool = False
    layer_media_type: str | None = None
    #: ``file:line`` of the source object, for messages.
    where: str | None = None


@dataclass(frozen=True, slots=True)
class FetchedChart:
    """A chart archive in the cache, digest verified: read it, never write it."""

    archive: Path
    info: ChartInfo


@dataclass(frozen=True, slots=True)
class ArtifactRequest:
    """An OCIRepository that a Flux Kustomization renders from (``flux push artifact`` content).

    ``ref`` is ``spec.ref`` (``tag``, ``semver``, ``semverFilter``, ``digest``; default tag
    ``latest``); the layer is the one ``spec.layerSelector.mediaType`` names, else the first
    layer whatever its media type (source-controller's default).
    """

    url: str
    #: ``OCIRepository namespace/name`` (for messages).
    source: str
    ref: Mapping[str, str] = field(default_factory=dict)
    insecure: bool = False
    layer_media_type: str | None = None
    layer_operation: Literal["extract", "copy"] = "extract"
    where: str | None = None


@dataclass(frozen=True, slots=True)
class FetchedArtifact:
    """An OCI artifact's selected layer in the cache, digest verified: read it, never write it."""

    #: The layer blob (a tar.gz for ``extract``; any file for ``copy``).
    blob: Path
    #: ``sha256:<hex>`` of the manifest the ref resolved to.
    digest: str
    #: Flux's revision form, ``<tag>@sha256:<hex>`` (or ``sha256:<hex>`` for a digest ref).
    revision: str


class SourceFetcher(Protocol):
    """Fetches what HelmReleases and OCIRepository sources name, under kubegate's limits."""

    def chart(self, request: ChartRequest) -> FetchedChart:
        """The chart ``request`` resolves to; RenderError with a one-line reason otherwise."""

    def artifact(self, request: ArtifactRequest) -> FetchedArtifact:
        """The OCI artifact layer ``request`` resolves to; RenderError otherwise."""


@dataclass(frozen=True, slots=True)
class HelmOptions:
    """How HelmReleases are rendered offline (CLI ``--kube-version``/``--api-versions``, config
    ``helm:``)."""

    #: The helm binary (None: ``helm`` on PATH).
    path: str | None = None
    #: ``--kube-version`` passed to ``helm template`` (Flux asks the cluster; offline we say).
    kube_version: str = "1.35.0"
    #: Extra ``--api-versions`` (``group/version`` or ``group/version/Kind``).
    api_versions: tuple[str, ...] = ()
    #: ``--values-from NS/KIND/NAME=FILE``: ``namespace/Kind/name`` -> file holding its data.
    values_from: Mapping[str, Path] = field(default_factory=dict)
