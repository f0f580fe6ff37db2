"""The OCI Distribution API client: ping, auth, manifests and blob streams over ``httpx``.

:class:`RegistryClient` owns one ``httpx.Client`` (thread-safe) and per-registry state (scheme
chosen by the first ``GET /v2/``, its auth challenge, a semaphore bounding concurrent requests).
Every request goes through :meth:`RegistryClient._stream`: retries with backoff on 429/5xx and
transport errors (``Retry-After`` honoured, bounded), redirects followed here rather than by httpx
so that ``Authorization`` is sent to the registry's own origin only, one re-authentication on
401. ``httpx`` exceptions are turned into :class:`~kubegate.errors.RegistryError` here.
Called by :func:`kubegate.registry.open_image` and by the scan pipeline (``resolve_digest``);
``kubegate.publish`` pushes Flux artifacts with :meth:`RegistryClient.upload_blob` and
:meth:`RegistryClient.put_manifest`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import quote

import httpx

from kubegate.errors import RegistryAuthError, RegistryError
from kubegate.models import Descriptor, Digest, ImageRef
from kubegate.registry.auth import (
    Challenge,
    Credentials,
    TokenCache,
    load_credentials,
    parse_challenges,
)
from kubegate.registry.manifest import ACCEPT
from kubegate.registry.options import RegistryOptions
from kubegate.registry.transport import (
    api_host,
    plain_http_allowed,
    redirect_allowed,
    retry_after,
    same_origin,
)
from kubegate.registry.verify import check_digest, read_limited, sha256_digest, split_digest
from kubegate.transfer import limit_of
from kubegate.transfer.http import bounded_transport

_logger = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_MAX_ERROR_BODY = 64 * 1024
_MAX_TOKEN_BODY = 1024 * 1024
#: Tag listing (:meth:`RegistryClient.list_tags`): page size asked for, and the bounds on what
#: one listing may cost. 10,000 tags cover chart repositories with years of releases.
TAGS_PAGE_SIZE = 1000
MAX_TAG_PAGES = 50
MAX_TAGS = 10_000
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?next"?', re.IGNORECASE)


@dataclass(slots=True)
class _Registry:
    """What the client learnt about one registry host (guarded by ``lock``)."""

    name: str
    host: str
    semaphore: threading.BoundedSemaphore
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: httpx.URL | None = None
    challenge: Challenge | None = None
    credentials: Credentials | None = None
    credentials_loaded: bool = False


def _safe_url(url: httpx.URL) -> str:
    """A URL for logs and errors: no query (pre-signed blob URLs carry secrets there)."""
    return str(url.copy_with(query=None, fragment=None))


class _RedactQueries(logging.Filter):
    """Strips query strings from the URLs httpx logs at INFO: a pre-signed blob URL carries its
    signature there, and kubegate's own logs never show it either."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _safe_url(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


def _redact_httpx_logs() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactQueries) for f in httpx_logger.filters):
        httpx_logger.addFilter(_RedactQueries())


def _describe(exc: httpx.HTTPError, timeout: float) -> str:
    limit = limit_of(exc)
    if limit is not None:
        return limit.reason
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s ({type(exc).__name__})"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


class RegistryClient:
    """A thread-safe OCI registry client; use it as a context manager or call :meth:`close`."""

    def __init__(self, options: RegistryOptions | None = None) -> None:
        self.options = options if options is not None else RegistryOptions()
        context = ssl.create_default_context()
        if self.options.ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(self.options.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise RegistryError(
                    f"cannot load CA file: {exc}", where=str(self.options.ca_file)
                ) from exc
        # trust_env=False: no proxies or netrc credentials picked up behind the user's back.
        # Every socket operation goes through the bounded transport (idle, rate, deadline).
        self._http = httpx.Client(
            transport=bounded_transport(self.options.limits, verify=context),
            timeout=httpx.Timeout(self.options.timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": self.options.user_agent, "Accept-Encoding": "identity"},
        )
        _redact_httpx_logs()
        self._tokens = TokenCache()
        self._registries: dict[str, _Registry] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- public API ---------------------------------------------------------------------------

    def resolve_digest(self, ref: ImageRef) -> Digest:
        """The digest a tag points to now (one ``HEAD``; a digest reference is returned as is)."""
        if ref.digest is not None:
            return ref.digest
        where = str(ref)
        path = f"/v2/{ref.repository}/manifests/{ref.tag}"
        with self._stream(ref, "HEAD", path, where, accept=ACCEPT) as response:
            self._raise_for_status(response, where, "manifest")
            header = response.headers.get("Docker-Content-Digest")
        if header:
            split_digest(header, where=where)
            return Digest(header)
        _logger.debug("%s: no Docker-Content-Digest on HEAD, fetching the manifest", where)
        _, _, digest = self.fetch_manifest(ref, ref.tag or "latest")
        return digest

    def fetch_manifest(
        self, ref: ImageRef, reference: str, *, where: str | None = None
    ) -> tuple[bytes, str | None, Digest]:
        """A manifest by tag or digest: verified bytes, content type and digest."""
        where = where or str(ref)
        path = f"/v2/{ref.repository}/manifests/{reference}"
        with self._stream(ref, "GET", path, where, accept=ACCEPT) as response:
            self._raise_for_status(response, where, "manifest")
            return self._manifest(response, reference, where)

    def _manifest(
        self, response: httpx.Response, reference: str, where: str
    ) -> tuple[bytes, str | None, Digest]:
        """The body of a successful manifest GET, bounded and verified (see fetch_manifest)."""
        limit = self.options.max_manifest_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise RegistryError(
                f"manifest of {declared} bytes exceeds the {limit}-byte limit", where=where
            )
        data = read_limited(self._iter(response, where), limit, where=where, what="manifest")
        content_type = response.headers.get("Content-Type")
        header = response.headers.get("Docker-Content-Digest")
        if ":" in reference:
            digest = Digest(reference)
        elif header:
            digest = Digest(header)
        else:
            digest = sha256_digest(data)
        check_digest(data, digest, where=where, what="manifest")
        return data, content_type, digest

    @contextlib.contextmanager
    def open_blob(
        self, ref: ImageRef, desc: Descriptor, *, where: str
    ) -> Iterator[Iterator[bytes]]:
        """Stream a blob's raw chunks (the caller verifies them: see ``VerifyingReader``)."""
        split_digest(desc.digest, where=where)
        path = f"/v2/{ref.repository}/blobs/{desc.digest}"
        with self._stream(ref, "GET", path, where) as response:
            self._raise_for_status(response, where, "blob")
            yield self._iter(response, where)

    def list_tags(
        self,
        ref: ImageRef,
        *,
        where: str | None = None,
        page_size: int = TAGS_PAGE_SIZE,
        max_pages: int = MAX_TAG_PAGES,
        max_tags: int = MAX_TAGS,
    ) -> list[str]:
        """The tags of ``ref``'s repository (``GET /v2/<name>/tags/list``), in registry order.

        Paginated as the distribution spec says: ``?n=`` asks for a page size, and a
        ``Link: <...>; rel="next"`` header names the next page. A next link is followed only
        on the registry's own origin (its path and query, never another host), and at most
        ``max_pages`` pages or ``max_tags`` tags are read: beyond either the listing is refused
        (a RegistryError), since choosing the highest version from a truncated list could pick
        the wrong one. Each page body is bounded like a manifest. Called by
        :mod:`kubegate.fetch` (OCI HelmRepositories, OCIRepository ``semver``).
        """
        where = where or ref.name
        path = f"/v2/{ref.repository}/tags/list?n={page_size}"
        tags: list[str] = []
        for _ in range(max_pages):
            with self._stream(ref, "GET", path, where) as response:
                self._raise_for_status(response, where, "tag list")
                body = read_limited(
                    self._iter(response, where),
                    self.options.max_manifest_bytes,
                    where=where,
                    what="tag list",
                )
                link = response.headers.get("Link")
                base = response.url
            tags.extend(_tags_of(body, where))
            if len(tags) > max_tags:
                raise RegistryError(
                    f"repository lists more than {max_tags} tags; refusing to choose from a "
                    "partial list",
                    where=where,
                )
            following = _next_link(link, base, where)
            if following is None:
                return tags
            path = following
        raise RegistryError(
            f"tag list longer than {max_pages} pages; refusing to choose from a partial list",
            where=where,
        )

    # -- pushing (``kubegate scan --publish``) -------------------------------------------------

    def blob_exists(self, ref: ImageRef, digest: Digest, *, where: str) -> bool:
        """Whether the repository already holds the blob (``HEAD``; 404 means no)."""
        split_digest(digest, where=where)
        path = f"/v2/{ref.repository}/blobs/{digest}"
        with self._stream(ref, "HEAD", path, where, push=True) as response:
            if response.status_code == 404:
                return False
            self._raise_for_status(response, where, "blob")
        return True

    def upload_blob(self, ref: ImageRef, data: bytes, *, where: str) -> Digest:
        """Upload ``data`` unless the repository holds it already; return its digest.

        A monolithic upload (distribution spec "POST then PUT"): ``POST .../blobs/uploads/``
        opens a session, one ``PUT <Location>&digest=...`` sends the bytes. The registry checks
        the digest itself; a different ``Docker-Content-Digest`` in its answer is refused too.
        """
        digest = sha256_digest(data)
        if self.blob_exists(ref, digest, where=where):
            _logger.debug("%s: blob %s already present", where, digest)
            return digest
        start = f"/v2/{ref.repository}/blobs/uploads/"
        with self._stream(ref, "POST", start, where, push=True, content=b"") as response:
            self._raise_for_status(response, where, "blob upload", ok=(202,))
            location = response.headers.get("Location")
        if not location:
            raise RegistryError("blob upload started without a Location", where=where)
        separator = "&" if "?" in location else "?"
        target = f"{location}{separator}digest={quote(digest, safe=':')}"
        self._put(ref, target, data, digest, "application/octet-stream", kind="blob", where=where)
        return digest

    def find_manifest(
        self, ref: ImageRef, reference: str, *, where: str
    ) -> tuple[bytes, Digest] | None:
        """The verified manifest ``reference`` names, or None when the registry has none (404).

        One ``GET`` (a 404 is the answer "none"), not a ``HEAD`` and then a ``GET``.
        """
        path = f"/v2/{ref.repository}/manifests/{reference}"
        with self._stream(ref, "GET", path, where, accept=ACCEPT, push=True) as response:
            if response.status_code == 404:
                return None
            self._raise_for_status(response, where, "manifest")
            data, _, digest = self._manifest(response, reference, where)
        return data, digest

    def put_manifest(
        self, ref: ImageRef, tag: str, data: bytes, media_type: str, *, where: str
    ) -> Digest:
        """``PUT`` a manifest under ``tag``; return its digest (checked against the answer)."""
        digest = sha256_digest(data)
        path = f"/v2/{ref.repository}/manifests/{tag}"
        self._put(ref, path, data, digest, media_type, kind="manifest", where=where)
        return digest

    def _put(
        self,
        ref: ImageRef,
        target: str,
        data: bytes,
        digest: Digest,
        content_type: str,
        *,
        kind: str,
        where: str,
    ) -> None:
        """``PUT`` the ``kind`` ("blob" or "manifest") ``data`` whose digest is ``digest``;
        an answer naming another digest is refused (the registry stored something else)."""
        what = "blob upload" if kind == "blob" else kind
        with self._stream(
            ref, "PUT", target, where, push=True, content=data, content_type=content_type
        ) as response:
            self._raise_for_status(response, where, what, ok=(201, 204))
            stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise RegistryError(f"registry stored {kind} {digest} as {stored}", where=where)

    # -- requests -----------------------------------------------------------------------------

    def _registry(self, ref: ImageRef) -> _Registry:
        with self._lock:
            registry = self._registries.get(ref.registry)
            if registry is None:
                mirror = self.options.mirrors.get(ref.registry)
                registry = _Registry(
                    # A mirror is its own registry for credentials, transport and limits.
                    name=mirror or ref.registry,
                    host=mirror or api_host(ref.registry),
                    semaphore=threading.BoundedSemaphore(max(1, self.options.max_concurrency)),
                )
                self._registries[ref.registry] = registry
            return registry

    @contextlib.contextmanager
    def _stream(
        self,
        ref: ImageRef,
        method: str,
        path: str,
        where: str,
        *,
        accept: str | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
        push: bool = False,
    ) -> Iterator[httpx.Response]:
        """One authenticated API request; the semaphore is held until the body is consumed.

        ``push`` asks for a token with the ``push`` action too (uploads and manifest PUTs).
        """
        registry = self._registry(ref)
        base = self._ping(registry, where)
        scope = f"repository:{ref.repository}:{'pull,push' if push else 'pull'}"
        headers = {"Accept": accept} if accept else {}
        if content_type:
            headers["Content-Type"] = content_type
        with registry.semaphore:
            authorization = self._authorization(registry, registry.challenge, scope, where)
            response = self._follow(
                registry, method, base.join(path), headers, authorization, where, content
            )
            if response.status_code == 401:
                challenge = self._challenge_of(response) or registry.challenge
                response.close()
                if challenge is None:
                    raise RegistryAuthError("authentication required (401)", where=where)
                authorization = self._authorization(registry, challenge, scope, where, refresh=True)
                if authorization is None:
                    raise RegistryAuthError(
                        "authentication required (401) and no credentials for "
                        f"{registry.name} in the Docker config",
                        where=where,
                    )
                response = self._follow(
                    registry, method, base.join(path), headers, authorization, where, content
                )
            try:
                if response.status_code == 401:
                    raise RegistryAuthError(self._auth_failure(registry, 401), where=where)
                if response.status_code == 403:
                    raise RegistryAuthError(self._auth_failure(registry, 403), where=where)
                yield response
            finally:
                response.close()

    def _auth_failure(self, registry: _Registry, status: int) -> str:
        who = "credentials rejected" if registry.credentials else "anonymous access refused"
        return f"{who} ({status})" if status == 401 else f"access denied ({status})"

    def _follow(
        self,
        registry: _Registry,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        authorization: str | None,
        where: str,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send with retries, following redirects; credentials only to the registry origin."""
        origin = registry.base
        for _ in range(self.options.max_redirects + 1):
            hop = dict(headers)
            if authorization and origin is not None and same_origin(url, origin):
                hop["Authorization"] = authorization
            response = self._send(method, url, hop, where, content=content)
            if response.status_code not in _REDIRECT_STATUS:
                return response
            location = response.headers.get("Location")
            response.close()
            if not location:
                raise RegistryError(f"redirect without Location from {_safe_url(url)}", where=where)
            target = url.join(location)
            if not redirect_allowed(url, target, self.options.insecure_registries):
                raise RegistryError(
                    f"refusing redirect from {_safe_url(url)} to {_safe_url(target)}", where=where
                )
            _logger.debug("%s: redirected to %s", where, _safe_url(target))
            url = target
        raise RegistryError(f"more than {self.options.max_redirects} redirects", where=where)

    def _send(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        where: str,
        *,
        retries: int | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """One request with retries on transport errors, 429 and 5xx (backoff, Retry-After).

        A body (``content``, uploads) is bytes in memory, so a retry can send it again.
        """
        options = self.options
        attempts = max(0, options.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            default_wait = min(options.backoff * (2**attempt), options.max_retry_after)
            try:
                request = self._http.build_request(method, url, headers=headers, content=content)
                response = self._http.send(request, stream=True)
                if method == "HEAD":
                    # No body follows a HEAD answer, but httpcore keeps the connection only
                    # once the (empty) body was read: without this every tag lookup of a
                    # warm scan opened a new TCP (and TLS) connection.
                    response.read()
            except httpx.HTTPError as exc:
                refused = None if last else self._retry_refused(exc, default_wait)
                if last or refused:
                    reason = _describe(exc, options.timeout)
                    if refused and refused != reason:
                        reason = f"{reason}; not retried: {refused}"
                    raise RegistryError(
                        f"cannot reach {_safe_url(url)}: {reason}", where=where
                    ) from exc
                _logger.debug(
                    "%s: %s %s failed (%s), retrying",
                    where,
                    method,
                    _safe_url(url),
                    _describe(exc, options.timeout),
                )
                time.sleep(default_wait)
                continue
            _logger.debug("%s: %s %s -> %s", where, method, _safe_url(url), response.status_code)
            if response.status_code in _RETRY_STATUS and not last:
                wait = retry_after(
                    response.headers.get("Retry-After"), default_wait, options.max_retry_after
                )
                refused = options.retry_budget.take(wait, options.limits)
                if refused:
                    status = response.status_code
                    response.close()
                    raise RegistryError(
                        f"{_safe_url(url)} answered {status}; not retried: {refused}",
                        where=where,
                    )
                response.close()
                _logger.info(
                    "%s: %s answered %s, retrying in %.1fs",
                    where,
                    _safe_url(url),
                    response.status_code,
                    wait,
                )
                time.sleep(wait)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_refused(self, exc: httpx.HTTPError, wait: float) -> str | None:
        """Why a failed attempt is not retried (None: retry, the budget is charged)."""
        limit = limit_of(exc)
        if limit is not None and not limit.retryable:
            return limit.reason
        return self.options.retry_budget.take(wait, self.options.limits)

    def _iter(self, response: httpx.Response, where: str) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(1 << 16)
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"reading from the registry failed: {_describe(exc, self.options.timeout)}",
                where=where,
            ) from exc

    def _raise_for_status(
        self, response: httpx.Response, where: str, what: str, *, ok: tuple[int, ...] = (200,)
    ) -> None:
        status = response.status_code
        if status in ok:
            return
        message = ""
        if response.request.method != "HEAD":
            with contextlib.suppress(RegistryError):
                body = read_limited(
                    self._iter(response, where), _MAX_ERROR_BODY, where=where, what="error"
                )
                message = _error_message(body)
        if not message:
            message = f"{what} unknown" if status == 404 else f"unexpected HTTP status for {what}"
        raise RegistryError(f"{message} ({status})", where=where)

    # -- scheme and auth ----------------------------------------------------------------------

    def _ping(self, registry: _Registry, where: str) -> httpx.URL:
        """Choose the scheme (HTTPS, HTTP fallback where allowed) and learn the challenge."""
        with registry.lock:
            if registry.base is not None:
                return registry.base
            schemes = ["https"]
            if plain_http_allowed(registry.host, self.options.insecure_registries):
                schemes.append("http")
            first_error: RegistryError | None = None
            for scheme in schemes:
                base = httpx.URL(f"{scheme}://{registry.host}")
                # With a plain-HTTP fallback ahead, one HTTPS attempt decides (no retries).
                retries = 0 if scheme != schemes[-1] else None
                try:
                    response = self._send("GET", base.join("/v2/"), {}, where, retries=retries)
                except RegistryError as exc:
                    _logger.debug("%s: ping %s failed: %s", where, _safe_url(base), exc.message)
                    if limit_of(exc) is not None:
                        # It answered, too slowly (or time is up): no other scheme helps.
                        raise
                    first_error = first_error or exc
                    continue
                with contextlib.closing(response):
                    status = response.status_code
                    # Read the (small) body so httpcore returns the connection to the pool:
                    # closed unread, it was dropped, and the scan's first request paid a new
                    # TCP (and TLS) handshake. A body past the limit just loses the connection.
                    with contextlib.suppress(RegistryError):
                        read_limited(
                            self._iter(response, where), _MAX_ERROR_BODY, where=where, what="ping"
                        )
                    if scheme == "http" and status == 400 and first_error is not None:
                        # A TLS server answering plain HTTP: its HTTPS error is the real one.
                        continue
                    if status not in (200, 401):
                        raise RegistryError(
                            f"{_safe_url(base)} does not speak the registry API (GET /v2/ "
                            f"answered {status})",
                            where=where,
                        )
                    registry.challenge = self._challenge_of(response) if status == 401 else None
                if scheme == "http":
                    _logger.debug(
                        "%s: HTTPS failed, using plain HTTP for loopback/insecure %s",
                        where,
                        registry.host,
                    )
                registry.base = base
                return base
            raise first_error or RegistryError("no usable scheme", where=where)

    @staticmethod
    def _challenge_of(response: httpx.Response) -> Challenge | None:
        challenges = parse_challenges(", ".join(response.headers.get_list("WWW-Authenticate")))
        bearer = [c for c in challenges if c.scheme == "bearer" and c.realm]
        basic = [c for c in challenges if c.scheme == "basic"]
        return (bearer or basic)[0] if bearer or basic else None

    def _credentials(self, registry: _Registry) -> Credentials | None:
        if not registry.credentials_loaded:
            registry.credentials = self.options.credentials.get(registry.name) or load_credentials(
                self.options.docker_config_path(), registry.name
            )
            registry.credentials_loaded = True
        return registry.credentials

    def _authorization(
        self,
        registry: _Registry,
        challenge: Challenge | None,
        scope: str,
        where: str,
        *,
        refresh: bool = False,
    ) -> str | None:
        """The ``Authorization`` value for a request to ``registry`` (None: anonymous)."""
        if challenge is None:
            return None
        credentials = self._credentials(registry)
        if challenge.scheme == "basic":
            return credentials.basic_header() if credentials else None
        realm = challenge.realm or ""
        service = challenge.params.get("service", "")
        wanted = challenge.params.get("scope") or scope
        key = (realm, service, wanted, credentials.username if credentials else "")
        if not refresh:
            token = self._tokens.get(key)
            if token is not None:
                return f"Bearer {token}"
        token, expires_in = self._fetch_token(registry, realm, service, wanted, credentials, where)
        self._tokens.put(key, token, expires_in)
        return f"Bearer {token}"

    def _fetch_token(
        self,
        registry: _Registry,
        realm: str,
        service: str,
        scope: str,
        credentials: Credentials | None,
        where: str,
    ) -> tuple[str, float | None]:
        """Get a bearer token from the realm the registry named (Docker's token flow).

        The registry's credentials go to the realm because the registry itself named it, even on
        another host (Docker does the same); never over plain HTTP to a non-loopback host that
        is not listed as insecure.
        """
        url = httpx.URL(realm)
        netloc = url.netloc.decode("ascii", "replace")
        if url.scheme not in ("http", "https") or (
            url.scheme == "http"
            and not plain_http_allowed(netloc, self.options.insecure_registries)
        ):
            raise RegistryAuthError(
                f"refusing token realm {_safe_url(url)} (not HTTPS)", where=where
            )
        params = {k: v for k, v in (("service", service), ("scope", scope)) if v}
        headers = {"Authorization": credentials.basic_header()} if credentials else {}
        response = self._send("GET", url.copy_merge_params(params), headers, where)
        with contextlib.closing(response):
            if response.status_code in (401, 403):
                who = "credentials rejected" if credentials else "anonymous token refused"
                raise RegistryAuthError(
                    f"{who} by token server {_safe_url(url)} ({response.status_code})",
                    where=where,
                )
            if response.status_code != 200:
                raise RegistryAuthError(
                    f"token server {_safe_url(url)} answered {response.status_code}", where=where
                )
            body = read_limited(
                self._iter(response, where), _MAX_TOKEN_BODY, where=where, what="token response"
            )
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RegistryAuthError("token response is not JSON", where=where) from exc
        token = (
            document.get("token") or document.get("access_token")
            if isinstance(document, dict)
            else None
        )
        if not isinstance(token, str) or not token:
            raise RegistryAuthError("token response holds no token", where=where)
        expires_in = document.get("expires_in")
        _logger.debug("%s: got a token for %s from %s", where, scope, _safe_url(url))
        return token, float(expires_in) if isinstance(expires_in, int | float) else None


def _error_message(body: bytes) -> str:
    """The first message of a distribution error body (``{"errors": [{"message": ...}]}``)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ""
    errors = document.get("errors") if isinstance(document, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        message = errors[0].get("message") or errors[0].get("code")
        if isinstance(message, str):
            return " ".join(message.split())[:200]
    return ""


def _tags_of(body: bytes, where: str) -> list[str]:
    """The ``tags`` of a tag-list page (``null`` is an empty repository, as distribution says)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError("tag list is not JSON", where=where) from exc
    tags = document.get("tags") if isinstance(document, dict) else None
    if tags is None and isinstance(document, dict):
        return []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise RegistryError("tag list holds no list of tags", where=where)
    return tags


def _next_link(header: str | None, base: httpx.URL, where: str) -> str | None:
    """Path and query of the ``rel="next"`` page, on the registry's own origin only."""
    if not header:
        return None
    match = _LINK_NEXT.search(header)
    if match is None:
        return None
    target = base.join(match.group(1))
    if not same_origin(target, base) or not target.path.startswith("/v2/"):
        raise RegistryError(
            f"tag list names its next page on another origin ({_safe_url(target)})", where=where
        )
    query = target.query.decode("ascii", "replace")
    return target.path + (f"?{query}" if query else "")
