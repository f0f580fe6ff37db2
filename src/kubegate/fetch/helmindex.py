"""HTTP(S) Helm repositories: read ``index.yaml``, pick a chart version, resolve its URL.

As source-controller does (``internal/helm/repository/chart_repository.go``): the index is
``<url>/index.yaml`` (JSON when it is valid JSON, else YAML), entries whose metadata is invalid
are dropped, an exact version string wins, else the highest version satisfying the semver
constraint (``*`` by default: the latest stable; equal versions differing in build metadata:
the later ``created`` wins), and the chart is the entry's first ``urls`` item resolved
against the repository URL as Helm's ``repo.ResolveReferenceURL`` does (the repository's query
kept). kubegate adds what source-controller does not: the entry's ``digest`` (sha256 hex of the
archive) is verified after download.

The index is untrusted input from the network: read under a size limit
(:data:`MAX_INDEX_BYTES`) and parsed through :mod:`kubegate.yamlload` (safe types, bounded
aliases). Called by :class:`kubegate.fetch.Fetcher`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import yaml

from kubegate import yamlload
from kubegate.errors import RenderError
from kubegate.fetch.constraints import SemverError, Version, choose
from kubegate.source.location import url_without_credentials

#: ``index.yaml`` larger than this is refused (large public repositories publish 10-30 MB).
MAX_INDEX_BYTES = 64 * 1024 * 1024
_HEX64 = re.compile(r"(?:sha256:)?([0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One chart version of an index: what kubegate needs of Helm's ``repo.ChartVersion``."""

    name: str
    version: str
    urls: tuple[str, ...]
    #: ``sha256:<hex>`` of the archive when the index gives one.
    digest: str | None
    created: dt.datetime | None


def index_url(repository: str) -> str:
    """``<url>/index.yaml`` (path joined as Go's ``path.Join``, query kept)."""
    parts = urlsplit(repository)
    path = parts.path.rstrip("/") + "/index.yaml"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def check_repository_url(url: str, where: str | None) -> None:
    """Only ``http(s)://host/...`` URLs are HelmRepository URLs (RenderError otherwise)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on an invalid port)
    except ValueError as exc:
        raise RenderError(
            f"HelmRepository URL {url_without_credentials(url)} is invalid", where=where
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RenderError(
            f"HelmRepository URL {url_without_credentials(url)} is not http(s)://", where=where
        )


def _created(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")[:32])
        except ValueError:
            return None
    return None


def _entry(name: str, raw: Any) -> IndexEntry | None:
    """An index entry, or None when Helm's ``ChartVersion.Validate`` would drop it."""
    if not isinstance(raw, dict):
        return None
    version = raw.get("version")
    chart_name = raw.get("name", name)
    if not isinstance(version, str) or not isinstance(chart_name, str) or not chart_name:
        return None
    try:
        Version.parse(version)
    except SemverError:
        return None
    urls = raw.get("urls")
    digest = raw.get("digest")
    digest_text = None
    if digest is not None and digest != "":
        # An unusable digest (not a string of 64 hex, e.g. all digits that YAML read as a
        # number) is kept as given: the download is then refused, never done unverified.
        match = _HEX64.fullmatch(digest.strip().lower()) if isinstance(digest, str) else None
        digest_text = f"sha256:{match.group(1)}" if match else str(digest)
    return IndexEntry(
        name=chart_name,
        version=version,
        urls=tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else (),
        digest=digest_text,
        created=_created(raw.get("created")),
    )


def parse_index(data: bytes, *, shown: str, where: str | None) -> Mapping[str, list[IndexEntry]]:
    """Chart name -> its valid entries, from the bytes of an ``index.yaml``."""
    if not data:
        raise RenderError(f"{shown}: index is empty", where=where)
    document: Any
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        try:
            document = yamlload.safe_load(data.decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise RenderError(f"{shown}: index is not valid YAML: {reason}", where=where) from exc
    if not isinstance(document, dict) or not document.get("apiVersion"):
        raise RenderError(f"{shown}: not a Helm repository index (no apiVersion)", where=where)
    entries = document.get("entries")
    if not isinstance(entries, dict):
        return {}
    result: dict[str, list[IndexEntry]] = {}
    for name, versions in entries.items():
        if not isinstance(name, str) or not isinstance(versions, list):
            continue
        result[name] = [e for raw in versions if (e := _entry(name, raw)) is not None]
    return result


def select(
    index: Mapping[str, list[IndexEntry]],
    chart: str,
    constraint: str,
    *,
    shown: str,
    where: str | None,
) -> IndexEntry:
    """The entry source-controller would pick for ``chart`` at ``constraint``."""
    versions = index.get(chart)
    if not versions:
        raise RenderError(f"{shown}: no chart {chart!r} in the repository index", where=where)
    # Newest ``created`` first: among equal versions (build metadata differs) it wins.
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    ordered = sorted(versions, key=lambda e: e.created or oldest, reverse=True)
    chosen = choose([e.version for e in ordered], constraint, what=f"chart {chart!r}", where=where)
    return next(e for e in ordered if e.version == chosen)


def resolve_chart_url(repository: str, reference: str, where: str | None) -> str:
    """Helm's ``repo.ResolveReferenceURL``: absolute as is, else relative to the repository
    URL with a trailing slash, the repository's query kept. Only http(s) URLs are fetched."""
    try:
        ref = urlsplit(reference)
    except ValueError as exc:
        raise RenderError(f"chart URL {reference[:200]!r} is invalid", where=where) from exc
    if ref.scheme:
        resolved = reference
    else:
        base = urlsplit(repository)
        base_path = base.path.rstrip("/") + "/"
        joined = urlsplit(
            urljoin(urlunsplit((base.scheme, base.netloc, base_path, "", "")), reference)
        )
        resolved = urlunsplit((joined.scheme, joined.netloc, joined.path, base.query, ""))
    parts = urlsplit(resolved)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RenderError(
            f"chart URL {url_without_credentials(resolved)} is not http(s)://", where=where
        )
    return resolved
