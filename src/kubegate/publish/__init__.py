"""Reaching the cluster (DESIGN.md section 4): Flux OCI artifacts of passing revisions.

``kubegate scan --publish oci://HOST/REPO[:TAG]`` and ``kubegate watch`` push a revision that
passed the gate as ``flux push artifact`` would, then move a tag (``approved``) that the
cluster's OCIRepository follows; nothing else is ever pushed. Module map: ``target`` (the
``oci://`` grammar and tag names), ``archive`` (the deterministic tarball), ``artifact`` (Flux's
manifest, config and annotations), ``push`` (upload order, tags), ``pin`` (``--publish-pin``),
``publisher`` (the judged tree's copy and :func:`publish_result`), ``database`` (the advisory
database's date and fingerprint, cached by its file's stat), ``watch`` (the daemon:
poll, judge, publish, state, metrics, notifications; ``state``, ``notify``). Imports neither
``kubegate.cli`` nor ``kubegate.scan``: the CLI hands the watch loop a ``Judge`` built from the
scan pipeline.
Documented in docs/publish.md.
"""

from __future__ import annotations

from kubegate.publish.database import DatabaseView, DBSummary
from kubegate.publish.publisher import (
    Published,
    PublishOptions,
    Snapshot,
    publish_result,
    refusal,
)
from kubegate.publish.target import DEFAULT_TAG, PublishTarget, check_tag, parse_target

__all__ = [
    "DEFAULT_TAG",
    "DBSummary",
    "DatabaseView",
    "PublishOptions",
    "PublishTarget",
    "Published",
    "Snapshot",
    "check_tag",
    "parse_target",
    "publish_result",
    "refusal",
]
