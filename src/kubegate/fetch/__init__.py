"""Fetching what HelmReleases and OCIRepository sources name (DESIGN.md section 1, ``fetch/``).

:class:`Fetcher` implements :class:`kubegate.render.fetch.SourceFetcher` on kubegate's own
registry client and bounded HTTP client; the CLI builds one and hands it to
:func:`kubegate.render.render`. Module map: ``fetcher`` (the class: limits, cache, allow-list,
threads), ``helmindex`` (HTTP(S) Helm repository indexes), ``oci`` (OCI references, ``spec.ref``
resolution, manifests and layers), ``constraints`` (the Masterminds/semver port Flux chooses
versions with), ``cache`` (files by digest). This layer sits above ``kubegate.registry`` and
below the scan pipeline (pyproject's import-linter contract). Behaviour: docs/sources.md.
"""

from __future__ import annotations

from kubegate.fetch.constraints import Constraints, SemverError, Version, choose
from kubegate.fetch.fetcher import Fetcher
from kubegate.fetch.helmindex import MAX_INDEX_BYTES

__all__ = ["MAX_INDEX_BYTES", "Constraints", "Fetcher", "SemverError", "Version", "choose"]
