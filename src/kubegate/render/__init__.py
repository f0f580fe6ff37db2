"""Render a revision into the Kubernetes objects Flux would apply, each with its origin.

Public API (used by ``kubegate.images.find``, ``kubegate.cli.images`` and later ``kubegate.scan``):
:func:`render` returns a :class:`RenderResult` of :class:`RenderedObject` values, what could not
be seen (HelmReleases that could not be rendered, Kustomizations from other sources), notes
and every problem found. Modules:
``yamlfile`` (YAML with line marks), ``plain`` (plain YAML directories), ``kustomize`` (the
kustomize runner), ``fluxks`` (Flux Kustomization semantics and generator), ``substitute``
(postBuild), ``provenance`` (file:line through kustomize), ``workspace`` (private copies) and
``clusters`` (which clusters a fleet describes), ``fleet`` (mode choice and the Kustomization
walker, one walk per cluster), ``confine`` (every path a build names stays in the source root)
``remote`` (remote resources refused, or fetched when allowed), ``fetch`` (what rendering asks
of the network) and ``helm`` (HelmReleases through the real helm).
"""

from kubegate.render.fleet import render
from kubegate.render.result import ImageLocator, Located, RenderedObject, RenderResult
from kubegate.render.yamlfile import Named, PathStep

__all__ = [
    "ImageLocator",
    "Located",
    "Named",
    "PathStep",
    "RenderResult",
    "RenderedObject",
    "render",
]
