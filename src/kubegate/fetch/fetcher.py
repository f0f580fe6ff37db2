"""The :class:`Fetcher`: kubegate's :class:`~kubegate.render.fetch.SourceFetcher`.

Charts (HTTP(S) and OCI HelmRepositories, OCIRepository ``chartRef``) and OCIRepository
artifacts for Flux Kustomizations are fetched on kubegate's own stack: the registry client
(:class:`~kubegate.registry.client.RegistryClient`: auth from the Docker config and the command
line, mirrors, retries, TLS options, digests verified) and the bounded HTTP client
(:func:`kubegate.transfer.http.bounded_client`: idle timeout, minimum rate, deadline) with the
size limits of :class:`~kubegate.source.limits.SourceLimits`.

- ``allowed`` (the policy's ``--allowed-registries``) is asked before any registry is
  contacted: a refused registry is a RenderError naming it.
- ``insecure`` (``spec.insecure``) lets that one registry be spoken to over plain HTTP, through
  a second client whose options add it to ``insecure_registries``; the caller's client (and
  every image pull) keeps its TLS rules.
- Archives and layers are cached by digest (:mod:`kubegate.fetch.cache`), re-verified on use;
  tags, index files and manifests are resolved again on every run (a tag moves).
- Thread-safe: HelmReleases may be rendered from worker threads. Each distinct request (and
  each repository index) is fetched once per Fetcher; later callers wait for the first and get
  its result or its error.

Constructed by the CLI (``kubegate images``/``scan``/``watch``) and handed to
:func:`kubegate.render.render`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Generator, Hashable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import yaml

from kubegate import yamlload
from kubegate.errors import KubegateError, RenderError, redact_urls
from kubegate.fetch import helmindex, oci
from kubegate.fetch.cache import BlobCache
from kubegate.models import ChartInfo, Descriptor, ImageRef
from kubegate.registry.client import RegistryClient
from kubegate.registry.verify import check_digest, read_limited
from kubegate.render.fetch import (
    HELM_CHART_LAYER,
    ArtifactRequest,
    ChartRequest,
    FetchedArtifact,
    FetchedChart,
)
from kubegate.source.limits import SourceLimits
from kubegate.source.location import url_without_credentials
from kubegate.transfer import TransferLimits, limit_of
from kubegate.transfer.http import bounded_client

_logger = logging.getLogger(__name__)

_T = TypeVar("_T")
#: Chart.yaml (or a Helm config blob) larger than this is not read for name and version.
_MAX_CHART_YAML = 1024 * 1024
_MAX_REDIRECTS = 10
#: Decompressed bytes read at most while looking for Chart.yaml in an archive.
_MAX_METADATA_SCAN = 128 * 1024 * 1024


class _Slot:
    """One memoised computation: the first caller computes, the others wait for it."""

    __slots__ = ("done", "error", "lock", "value")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.value: Any = None
        #: The error's one line, without the asking source (see :meth:`Fetcher._once`).
        self.error: str | None = None


class Fetcher:
    """Fetches charts and OCI artifacts under kubegate's limits (see the module docstring)."""

    def __init__(
        self,
        client: RegistryClient,
        *,
        cache_dir: Path | None,
        limits: SourceLimits,
        allowed: Callable[[ImageRef], bool] | None = None,
        deadline: float | None = None,
    ) -> None:
        self._client = client
        self._limits = limits
        self._allowed = allowed
        self._deadline = deadline
        self._temp: Path | None = None
        if cache_dir is None:
            self._temp = Path(tempfile.mkdtemp(prefix="kubegate-fetch-"))
            cache_dir = self._temp
        self.cache_dir = cache_dir
        self._charts = BlobCache(cache_dir, "charts", ".tgz")
        self._blobs = BlobCache(cache_dir, "oci-layers")
        self._lock = threading.Lock()
        self._slots: dict[Hashable, _Slot] = {}
        self._insecure_clients: dict[str, RegistryClient] = {}
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the clients this fetcher made and remove its private temp dir (if any)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            clients = list(self._insecure_clients.values())
            self._insecure_clients.clear()
        for client in clients:
            client.close()
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)

    # -- SourceFetcher -------------------------------------------------------------------------

    def chart(self, request: ChartRequest) -> FetchedChart:
        """The chart ``request`` resolves to (see :class:`~kubegate.render.fetch.ChartRequest`)."""
        key = (
            "chart",
            request.kind,
            request.url,
            request.chart,
            request.version,
            tuple(sorted(request.ref.items())),
            request.insecure,
            request.layer_media_type,
        )
        fetch: Callable[[], FetchedChart]
        if request.kind == "helm-repository":
            fetch = lambda: self._http_chart(request)  # noqa: E731
        elif request.kind == "oci-helm-repository":
            fetch = lambda: self._oci_helm_chart(request)  # noqa: E731
        elif request.kind == "oci-repository":
            fetch = lambda: self._oci_repository_chart(request)  # noqa: E731
        else:
            raise RenderError(f"{request.source}: unknown chart source kind", where=request.where)
        return self._once(key, fetch, request.source, request.where)

    def artifact(self, request: ArtifactRequest) -> FetchedArtifact:
        """The OCIRepository layer ``request`` resolves to (Flux Kustomization sources)."""
        key = (
            "artifact",
            request.url,
            tuple(sorted(request.ref.items())),
            request.insecure,
            request.layer_media_type,
        )
        return self._once(key, lambda: self._artifact(request), request.source, request.where)

    # -- memoisation and errors ----------------------------------------------------------------

    def _once(self, key: Hashable, compute: Callable[[], _T], source: str, where: str | None) -> _T:
        """``compute()`` once per ``key``; errors are kept as one line without the source that
        first asked, and raised to each caller naming its own ``source`` and ``where`` (two
        HelmRepository objects may name one URL)."""
        with self._lock:
            if self._closed:
                raise RenderError(f"{source}: the fetcher is closed", where=where)
            slot = self._slots.setdefault(key, _Slot())
        with slot.lock:
            if not slot.done:
                try:
                    slot.value = compute()
                except RenderError as exc:
                    slot.error = _core(exc.message, exc.where, source, where)
                except KubegateError as exc:
                    # Registry, source and usage errors of the fetch: one line for the caller.
                    slot.error = _core(exc.message, exc.where, source, where)
                slot.done = True
        if slot.error is not None:
            # A fresh exception per caller (threads must not share one traceback).
            raise RenderError(f"{source}: {slot.error}", where=where)
        value: _T = slot.value
        return value

    def _check_time(self, source: str, where: str | None) -> None:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise RenderError(f"{source}: the command's deadline (--timeout) passed", where=where)

    # -- HTTP(S) HelmRepository ----------------------------------------------------------------

    def _index(self, url: str, source: str, where: str | None) -> Any:
        """The parsed index of the repository at ``url`` (fetched once per fetcher)."""
        return self._once(
            ("index", url), lambda: self._load_index(url, source, where), source, where
        )

    def _load_index(self, url: str, source: str, where: str | None) -> Any:
        helmindex.check_repository_url(url, where)
        location = helmindex.index_url(url)
        shown = url_without_credentials(location)
        data = b"".join(
            self._http_chunks(location, helmindex.MAX_INDEX_BYTES, shown, source, where)
        )
        # The parsed form of exactly these bytes, kept from an earlier run: written by kubegate
        # into its own cache dir and named by the sha256 of the index, so trusted by name (a
        # file that does not load is ignored and replaced).
        parsed = (
            self.cache_dir / "helm-index" / "sha256" / f"{hashlib.sha256(data).hexdigest()}.json"
        )
        with contextlib.suppress(OSError):
            cached = helmindex.load_parsed(parsed.read_bytes())
            if cached is not None:
                _logger.debug("%s: parsed index from the cache", shown)
                return cached
        started = time.monotonic()
        index = helmindex.parse_index(data, shown=shown, where=where)
        _logger.debug(
            "%s: %d bytes, %d charts parsed in %.2fs",
            shown,
            len(data),
            len(index),
            time.monotonic() - started,
        )
        with contextlib.suppress(OSError):
            parsed.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temp = tempfile.mkstemp(dir=parsed.parent, prefix=".partial-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(helmindex.dump_parsed(index))
            os.replace(temp, parsed)
        return index

    def _http_chart(self, request: ChartRequest) -> FetchedChart:
        where, source = request.where, request.source
        index = self._index(request.url, source, where)
        shown_repo = url_without_credentials(request.url)
        entry = helmindex.select(
            index, request.chart, request.version or "*", shown=shown_repo, where=where
        )
        if not entry.urls:
            raise RenderError(
                f"{source}: chart {entry.name} {entry.version} has no download URL", where=where
            )
        url = helmindex.resolve_chart_url(request.url, entry.urls[0], where)
        shown = url_without_credentials(url)
        if entry.digest is not None:
            try:
                cached = self._charts.get(entry.digest)
            except RenderError as exc:
                raise RenderError(
                    f"{source}: index digest of {entry.name} {entry.version}: {exc.message}",
                    where=where,
                ) from exc
            if cached is not None:
                _logger.debug("%s: %s from the cache", source, shown)
                return FetchedChart(
                    cached, ChartInfo(entry.name, entry.version, entry.digest, shown_repo)
                )
        chunks: Generator[bytes, None, None] = self._http_chunks(
            url, self._limits.max_artifact_bytes, shown, source, where
        )
        try:
            # closing(): a refused download closes its connection at once, not at collection.
            with contextlib.closing(chunks):
                path, digest, size = self._charts.store(
                    chunks,
                    limit=self._limits.max_artifact_bytes,
                    what=f"chart {shown}",
                    expected=entry.digest,
                )
        except RenderError as exc:
            if exc.where is None:
                raise RenderError(f"{source}: {exc.message}", where=where) from exc
            raise
        _logger.info("%s: fetched %s (%d bytes, %s)", source, shown, size, digest)
        return FetchedChart(path, ChartInfo(entry.name, entry.version, digest, shown_repo))

    def _http_chunks(
        self, url: str, limit: int, shown: str, source: str, where: str | None
    ) -> Generator[bytes, None, None]:
        """The body of one GET of ``url``, at most ``limit`` bytes, under the transfer bounds."""
        self._check_time(source, where)
        own = time.monotonic() + self._limits.download_deadline
        stop = own if self._deadline is None else min(own, self._deadline)
        transfer = TransferLimits(
            min_rate=self._limits.min_rate, rate_window=self._limits.rate_window, deadline=stop
        )
        size = 0
        try:
            with (
                bounded_client(
                    url, transfer, timeout=self._limits.http_timeout, max_redirects=_MAX_REDIRECTS
                ) as client,
                client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
            ):
                if response.status_code != httpx.codes.OK:
                    raise RenderError(
                        f"{source}: fetching {shown} failed: HTTP {response.status_code}",
                        where=where,
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise RenderError(
                        f"{source}: {shown} is larger than the {limit}-byte limit", where=where
                    )
                for chunk in response.iter_raw(1 << 16):
                    size += len(chunk)
                    if size > limit:
                        raise RenderError(
                            f"{source}: {shown} is larger than the {limit}-byte limit",
                            where=where,
                        )
                    yield chunk
        except httpx.InvalidURL as exc:
            raise RenderError(
                f"{source}: fetching {shown} failed: invalid URL", where=where
            ) from exc
        except httpx.HTTPError as exc:
            raise RenderError(
                f"{source}: fetching {shown} failed: {_http_reason(exc)}", where=where
            ) from exc

    # -- OCI -----------------------------------------------------------------------------------

    def _registry_client(
        self, repo: ImageRef, insecure: bool, source: str, where: str | None
    ) -> RegistryClient:
        """The client for ``repo`` once ``allowed`` agreed (never contacted otherwise)."""
        if self._allowed is not None and not self._allowed(repo):
            raise RenderError(
                f"{source}: registry {repo.registry} is not in the allowed registries "
                "(--allowed-registries); not contacted",
                where=where,
            )
        self._check_time(source, where)
        options = self._client.options
        if not insecure or repo.registry in options.insecure_registries:
            return self._client
        with self._lock:
            client = self._insecure_clients.get(repo.registry)
            if client is None:
                client = RegistryClient(
                    dataclasses.replace(
                        options,
                        insecure_registries=options.insecure_registries | {repo.registry},
                    )
                )
                self._insecure_clients[repo.registry] = client
            return client

    def _manifest(
        self, client: RegistryClient, repo: ImageRef, resolved: oci.Resolved, where: str
    ) -> tuple[oci.ArtifactManifest, str]:
        tagged = dataclasses.replace(repo, tag=resolved.tag)
        data, _, digest = client.fetch_manifest(tagged, resolved.reference, where=where)
        return oci.parse_artifact_manifest(data, where=where), digest

    def _blob(
        self,
        client: RegistryClient,
        repo: ImageRef,
        layer: Descriptor,
        cache: BlobCache,
        label: str,
    ) -> Path:
        cached = cache.get(layer.digest)
        if cached is not None:
            _logger.debug("%s: layer %s from the cache", label, layer.digest)
            return cached
        limit = self._limits.max_artifact_bytes
        if layer.size > limit:
            raise RenderError(
                f"layer {layer.digest} of {layer.size} bytes exceeds the {limit}-byte limit"
            )
        with client.open_blob(repo, layer, where=label) as chunks:
            path, _, size = cache.store(
                chunks,
                limit=min(limit, layer.size),
                what=f"layer {layer.digest}",
                expected=layer.digest,
            )
        _logger.info("%s: fetched layer %s (%d bytes)", label, layer.digest, size)
        return path

    def _small_blob(
        self, client: RegistryClient, repo: ImageRef, desc: Descriptor, label: str
    ) -> bytes:
        limit = min(self._client.options.max_manifest_bytes, _MAX_CHART_YAML)
        if desc.size > limit:
            raise RenderError(f"config blob of {desc.size} bytes exceeds {limit} bytes")
        with client.open_blob(repo, desc, where=label) as chunks:
            data = read_limited(chunks, limit, where=label, what="config blob")
        check_digest(data, desc.digest, where=label, what="config blob")
        return data

    def _oci_chart_file(
        self,
        client: RegistryClient,
        repo: ImageRef,
        resolved: oci.Resolved,
        media_type: str | None,
        label: str,
    ) -> tuple[Path, str, oci.ArtifactManifest, Descriptor]:
        manifest, _ = self._manifest(client, repo, resolved, label)
        layer = oci.pick_layer(manifest, media_type, first_if_unset=False, where=label)
        return self._blob(client, repo, layer, self._charts, label), layer.digest, manifest, layer

    def _oci_helm_chart(self, request: ChartRequest) -> FetchedChart:
        where, source = request.where, request.source
        if not request.chart:
            raise RenderError(f"{source}: no chart name given", where=where)
        repo = oci.repository_of(f"{request.url.rstrip('/')}/{request.chart}", where=where)
        client = self._registry_client(repo, request.insecure, source, where)
        label = oci.display(repo)
        tag = oci.chart_tag(
            request.version or "*",
            lambda: client.list_tags(repo, where=label),
            what=f"chart {request.chart!r} ({label})",
            where=where,
        )
        path, digest, _, _ = self._oci_chart_file(
            client, repo, oci.Resolved(tag, tag), HELM_CHART_LAYER, label
        )
        info = ChartInfo(
            name=request.chart, version=tag.replace("_", "+"), digest=digest, source=label
        )
        return FetchedChart(path, info)

    def _resolve(
        self,
        client: RegistryClient,
        repo: ImageRef,
        ref: Any,
        *,
        helm_tags: bool,
        label: str,
        where: str | None,
    ) -> oci.Resolved:
        """``getArtifactRef``: digest, else semver over the listed tags, else tag, else latest."""
        digest = oci.ref_digest(ref, where=where)
        if digest is not None:
            return oci.Resolved(digest, None)
        semver = str(ref.get("semver") or "")
        if semver:
            keep = oci.tag_filter(str(ref.get("semverFilter") or ""), where=where)
            tags = [tag for tag in client.list_tags(repo, where=label) if keep(tag)]
            tag = oci.choose_semver_tag(tags, semver, helm_tags=helm_tags, what=label, where=where)
            return oci.Resolved(tag, tag)
        tag = str(ref.get("tag") or "latest")
        return oci.Resolved(tag, tag)

    def _resolve_request(
        self, request: ChartRequest | ArtifactRequest
    ) -> tuple[RegistryClient, ImageRef, str, oci.Resolved]:
        """An OCIRepository's client, repository, display label and resolved ``spec.ref``."""
        repo = oci.repository_of(request.url, where=request.where)
        client = self._registry_client(repo, request.insecure, request.source, request.where)
        label = oci.display(repo)
        resolved = self._resolve(
            client,
            repo,
            request.ref,
            helm_tags=request.layer_media_type == HELM_CHART_LAYER,
            label=label,
            where=request.where,
        )
        return client, repo, label, resolved

    def _oci_repository_chart(self, request: ChartRequest) -> FetchedChart:
        client, repo, label, resolved = self._resolve_request(request)
        path, digest, manifest, _ = self._oci_chart_file(
            client, repo, resolved, request.layer_media_type, label
        )
        name, version = self._chart_metadata(client, repo, manifest, path, label)
        info = ChartInfo(name=name, version=version, digest=digest, source=label)
        return FetchedChart(path, info)

    def _chart_metadata(
        self,
        client: RegistryClient,
        repo: ImageRef,
        manifest: oci.ArtifactManifest,
        archive: Path,
        label: str,
    ) -> tuple[str, str]:
        """Name and version of a chart: Helm's config blob (Chart.yaml as JSON) when the
        artifact has one, else ``<chart>/Chart.yaml`` read from the archive (bounded)."""
        document: Any = None
        if manifest.config.media_type == oci.HELM_CONFIG:
            data = self._small_blob(client, repo, manifest.config, label)
            with contextlib.suppress(UnicodeDecodeError, json.JSONDecodeError):
                document = json.loads(data)
        if not isinstance(document, dict):
            document = _chart_yaml(archive, self._limits, label)
        name, version = document.get("name"), document.get("version")
        if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
            raise RenderError("chart metadata (Chart.yaml) lacks name or version", where=label)
        return name, version

    def _artifact(self, request: ArtifactRequest) -> FetchedArtifact:
        client, repo, label, resolved = self._resolve_request(request)
        manifest, digest = self._manifest(client, repo, resolved, label)
        layer = oci.pick_layer(manifest, request.layer_media_type, first_if_unset=True, where=label)
        blob = self._blob(client, repo, layer, self._blobs, label)
        return FetchedArtifact(blob=blob, digest=digest, revision=oci.revision(resolved, digest))


def _core(message: str, error_where: str | None, source: str, where: str | None) -> str:
    """An error's text for any caller: the asking source's prefix removed, a location that is
    not the asker's (a registry reference, a URL) kept in the text."""
    message = message.removeprefix(f"{source}: ")
    if error_where and error_where != where:
        message = f"{error_where}: {message}"
    return " ".join(redact_urls(message).split())


def _chart_yaml(archive: Path, limits: SourceLimits, label: str) -> Any:
    """``<chart>/Chart.yaml`` of a chart archive, read without extracting anything.

    The archive is untrusted: decompressed bytes and entries read are bounded, and only a
    regular file at depth one named ``Chart.yaml`` of at most 1 MiB is read.
    """
    # Helm packages Chart.yaml first; an archive that hides it behind a bomb is cut short.
    budget = min(limits.max_extracted_bytes, _MAX_METADATA_SCAN)
    entries = 0
    try:
        with (
            archive.open("rb") as raw,
            gzip.GzipFile(fileobj=raw, mode="rb") as unzipped,
            tarfile.open(fileobj=_Bounded(unzipped, budget, label), mode="r|") as tar,  # type: ignore[call-overload]
        ):
            for member in tar:
                entries += 1
                if entries > limits.max_entries:
                    break
                parts = [p for p in member.name.split("/") if p not in ("", ".")]
                if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isreg():
                    if member.size > _MAX_CHART_YAML:
                        break
                    handle = tar.extractfile(member)
                    if handle is None:
                        break
                    text = handle.read(_MAX_CHART_YAML).decode("utf-8")
                    return yamlload.safe_load(text)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        raise RenderError(f"chart archive is not a valid tar.gz: {exc}", where=label) from exc
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RenderError("chart archive's Chart.yaml is not valid YAML", where=label) from exc
    raise RenderError("chart archive holds no <chart>/Chart.yaml", where=label)


class _Bounded:
    """``read()`` of a decompressing stream that refuses more than ``limit`` bytes."""

    def __init__(self, inner: gzip.GzipFile, limit: int, label: str) -> None:
        self._inner = inner
        self._left = limit
        self._label = label

    def read(self, size: int = -1) -> bytes:
        want = self._left + 1 if size is None or size < 0 else min(size, self._left + 1)
        data = self._inner.read(want)
        self._left -= len(data)
        if self._left < 0:
            raise RenderError("chart archive expands beyond the size limit", where=self._label)
        return data


def _http_reason(exc: httpx.HTTPError) -> str:
    """Why a chart repository request failed, in one line that names no URL or credential."""
    limit_hit = limit_of(exc)
    if limit_hit is not None:
        return limit_hit.reason
    name = type(exc).__name__
    if isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.TimeoutException):
        # The OS's words ("[Errno 111] Connection refused", a name that does not resolve):
        # they say what to fix, and socket errors carry no URL.
        detail = str(exc).strip().splitlines()
        if detail:
            return f"{name}: {detail[0][:200]}"
    return name
