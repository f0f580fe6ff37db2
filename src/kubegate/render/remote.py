"""Remote kustomize resources: refused by default, fetched by kubegate itself when allowed.

kustomize fetches ``resources: [https://...]`` and git URLs at build time: from a gate that is
request forgery steered by the judged revision, and a verdict over bytes the revision does not
hold. By default every remote reference :mod:`kubegate.render.confine` finds is a render
problem (the build is not proven, exit 2). With ``--allow-remote-bases`` (config
``render.allowRemoteBases``) a plain ``http(s)://`` URL of a YAML file of Kubernetes objects is
fetched here, never by kustomize: one GET through the bounded client
(:func:`kubegate.transfer.http.bounded_client`: idle timeout, minimum rate) with a size limit
and a deadline, parsed under the YAML limits, written into the private build tree and
named in the kustomization kustomize reads; its sha256 goes into the report
(:class:`~kubegate.models.RemoteBase`). Git, OCI and ``file://`` forms, and URLs of remote
kustomization directories, stay refused even then (their bytes would need a clone and a second
confinement). Called by the fleet walker after :func:`kubegate.render.fluxks.prepare_build`.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from kubegate.errors import RenderError
from kubegate.models import Origin, RemoteBase
from kubegate.render.confine import RemoteRef
from kubegate.render.provenance import KUSTOMIZATION_FILES
from kubegate.render.workspace import Workspace, replace_file
from kubegate.render.yamlfile import MAX_FILE_BYTES, dump, load_documents, parse_documents
from kubegate.source.location import url_without_credentials
from kubegate.transfer import TransferLimits, limit_of
from kubegate.transfer.http import bounded_client

_logger = logging.getLogger(__name__)

#: Connect/read timeout of the one request per remote file.
HTTP_TIMEOUT_S = 30.0
#: Wall-clock bound of one download (a server may drip bytes).
DOWNLOAD_DEADLINE_S = 60.0
_MAX_REDIRECTS = 5
_BASE_FIELDS = ("resources", "bases")


@dataclass(frozen=True, slots=True)
class RemoteOptions:
    """Whether remote resources are fetched, and the overall deadline (monotonic) if any."""

    allow: bool = False
    deadline: float | None = None


def _git_form(url: str) -> bool:
    """Whether kustomize would treat an http(s) URL as a git repository (repospec.go)."""
    parts = urlsplit(url)
    query = parts.query.lower()
    return (
        "ref=" in query
        or "version=" in query
        or "//" in parts.path
        or ".git" in parts.path
        or "_git/" in parts.path
        or (parts.hostname or "").lower() in ("github.com", "gitlab.com", "bitbucket.org")
    )


def refuse(refs: Sequence[RemoteRef]) -> RenderError:
    """The error for remote references when fetching them is not allowed."""
    ref = refs[0]
    more = f" (and {len(refs) - 1} more)" if len(refs) > 1 else ""
    return RenderError(
        f"{ref.field}: remote base {url_without_credentials(ref.url)} is not proven{more}: "
        "kubegate judges only the files of the revision (vendor it, or pass "
        "--allow-remote-bases to fetch it)",
        where=ref.file,
    )


def local_name(base: RemoteBase) -> str:
    """Source-relative path of the private copy of ``base`` in the build tree."""
    directory = posixpath.dirname(base.origin.file or "")
    return posixpath.join(
        directory, f".kubegate-remote-{base.digest.removeprefix('sha256:')[:16]}.yaml"
    )


def remote_files(fetched: Sequence[RemoteBase]) -> dict[str, str]:
    """Private copy -> the kustomization file naming it (provenance of fetched objects)."""
    return {local_name(base): base.origin.file or "" for base in fetched}


def fetch_all(
    refs: Sequence[RemoteRef], workspace: Workspace, farm: Path, options: RemoteOptions
) -> list[RemoteBase]:
    """Fetch every reference into ``farm`` and point its kustomization at the copy."""
    if not options.allow:
        raise refuse(refs)
    return [_fetch_one(ref, workspace, farm, options) for ref in refs]


def _fetch_one(
    ref: RemoteRef, workspace: Workspace, farm: Path, options: RemoteOptions
) -> RemoteBase:
    shown = url_without_credentials(ref.url)
    try:
        scheme = urlsplit(ref.url.strip()).scheme.lower() if "://" in ref.url else ""
        git_form = _git_form(ref.url)
    except ValueError as exc:  # an unclosed IPv6 bracket, say
        raise RenderError(
            f"{ref.field}: remote base {shown} is not a valid URL", where=ref.file
        ) from exc
    if ref.field.startswith("components") or scheme not in ("http", "https"):
        raise RenderError(
            f"{ref.field}: remote base {shown} is a git, OCI or file reference or a component: "
            "not supported even with --allow-remote-bases (vendor it into the revision)",
            where=ref.file,
        )
    if git_form:
        raise RenderError(
            f"{ref.field}: remote base {shown} names a git repository: not supported even "
            "with --allow-remote-bases (vendor it, or use a URL of a YAML file)",
            where=ref.file,
        )
    body = _download(ref.url.strip(), shown, ref.file, options.deadline)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RenderError(f"{ref.field}: {shown} is not UTF-8 text", where=ref.file) from exc
    documents = parse_documents(text, shown)
    if not documents or not all(
        isinstance(d.value, dict) and d.value.get("apiVersion") and d.value.get("kind")
        for d in documents
    ):
        raise RenderError(
            f"{ref.field}: {shown} is not a YAML file of Kubernetes objects (remote "
            "kustomization directories are not supported)",
            where=ref.file,
        )
    digest = hashlib.sha256(body).hexdigest()
    directory = workspace.realize(farm, ref.directory)
    name = f".kubegate-remote-{digest[:16]}.yaml"
    (directory / name).write_bytes(body)
    _point_at(directory, ref, name)
    _logger.info("%s: fetched %s (%d bytes, sha256:%s)", ref.file, shown, len(body), digest)
    return RemoteBase(shown, f"sha256:{digest}", Origin(ref.file), ref.field)


def _point_at(directory: Path, ref: RemoteRef, name: str) -> None:
    """Replace the URL by the fetched file in the kustomization of ``directory`` (farm copy)."""
    found = next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)
    if found is None:
        raise RenderError("kustomization file vanished from the build tree", where=ref.file)
    docs = load_documents(found, ref.file)
    kus: dict[Any, Any] = docs[0].value if docs and isinstance(docs[0].value, dict) else {}
    for key, value in kus.items():
        if isinstance(key, str) and key.lower() in _BASE_FIELDS and isinstance(value, list):
            kus[key] = [name if item == ref.url else item for item in value]
    replace_file(found, dump(kus))


def _download(url: str, shown: str, where: str, deadline: float | None) -> bytes:
    own = time.monotonic() + DOWNLOAD_DEADLINE_S
    stop = own if deadline is None else min(own, deadline)
    chunks: list[bytes] = []
    size = 0
    try:
        with (
            bounded_client(
                url,
                TransferLimits(deadline=stop),
                timeout=HTTP_TIMEOUT_S,
                max_redirects=_MAX_REDIRECTS,
            ) as client,
            client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as resp,
        ):
            if resp.status_code != httpx.codes.OK:
                raise RenderError(f"fetching {shown} failed: HTTP {resp.status_code}", where=where)
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_FILE_BYTES:
                raise RenderError(f"{shown}: larger than {MAX_FILE_BYTES} bytes", where=where)
            for chunk in resp.iter_raw(1 << 16):
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise RenderError(f"{shown}: larger than {MAX_FILE_BYTES} bytes", where=where)
                if time.monotonic() > stop:
                    raise RenderError(f"fetching {shown} took too long", where=where)
                chunks.append(chunk)
    except httpx.InvalidURL as exc:
        # Not an HTTPError: httpx refuses the URL itself (a port out of range, say).
        raise RenderError(f"fetching {shown} failed: invalid URL", where=where) from exc
    except httpx.HTTPError as exc:
        limit = limit_of(exc)
        if limit is not None and limit.deadline:
            raise RenderError(f"fetching {shown} took too long", where=where) from exc
        reason = limit.reason if limit is not None else type(exc).__name__
        raise RenderError(f"fetching {shown} failed: {reason}", where=where) from exc
    return b"".join(chunks)
