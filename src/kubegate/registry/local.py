"""Local images: OCI layout directories, OCI archives and ``docker save`` archives.

``oci:PATH[:TAG]`` reads an OCI image layout (``index.json``; a tag selects the manifest whose
``org.opencontainers.image.ref.name`` annotation is the tag, no tag requires a single manifest);
``oci-archive:PATH[:TAG]`` reads the same from an uncompressed tar without extracting it (each blob
is a byte range of the archive); ``docker-archive:PATH[:REPO:TAG]`` reads ``manifest.json`` of a
``docker save`` tar. Docker archives have no manifest of their own, so one is synthesised: an OCI
manifest whose config and layer digests are the sha256 of the files' bytes, serialised as compact
JSON with sorted keys; the image digest reported is the sha256 of those bytes. Archive member names
that are absolute or contain ``..`` are refused, as are links leaving the archive.
Called by :func:`kubegate.registry.open_image`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import posixpath
import stat
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubegate.errors import ImageReferenceError, RegistryError
from kubegate.images.reference import parse_reference
from kubegate.models import Descriptor, Digest
from kubegate.registry.image import Image, assemble_image
from kubegate.registry.manifest import OCI_CONFIG, OCI_MANIFEST, load_json, parse_index
from kubegate.registry.options import RegistryOptions
from kubegate.registry.verify import check_digest, chunked, read_limited, split_digest

_REF_NAME = "org.opencontainers.image.ref.name"
_MAX_MEMBERS = 100_000
_MAX_LINK_DEPTH = 8
_LAYER_TYPES = (
    (b"\x1f\x8b", "application/vnd.oci.image.layer.v1.tar+gzip"),
    (b"\x28\xb5\x2f\xfd", "application/vnd.oci.image.layer.v1.tar+zstd"),
)
_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def _blob_path(digest: str, *, where: str) -> str:
    algorithm, hexpart = split_digest(digest, where=where)
    return f"blobs/{algorithm}/{hexpart}"


class DirSource:
    """Blobs of an OCI layout directory (``blobs/<alg>/<hex>``, regular files only)."""

    def __init__(self, root: Path, options: RegistryOptions, where: str) -> None:
        self._root = root
        self._options = options
        self._where = where

    def _open(self, relative: str) -> Any:
        path = self._root / relative
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise RegistryError(f"{relative} missing from the layout", where=self._where) from exc
        except OSError as exc:
            raise RegistryError(
                f"cannot read {relative}: {exc.strerror}", where=self._where
            ) from exc
        if not stat.S_ISREG(Path(handle.name).stat().st_mode):
            handle.close()
            raise RegistryError(f"{relative} is not a regular file", where=self._where)
        return handle

    def read_document(self, relative: str, what: str) -> bytes:
        """A small file of the layout (``index.json``), size-limited."""
        with self._open(relative) as handle:
            return read_limited(
                chunked(handle, self._options.max_manifest_bytes),
                self._options.max_manifest_bytes,
                where=self._where,
                what=what,
            )

    def fetch_manifest(self, digest: Digest) -> tuple[bytes, str | None]:
        data = self.read_document(_blob_path(digest, where=self._where), "manifest")
        check_digest(data, digest, where=self._where, what="manifest")
        return data, None

    @contextlib.contextmanager
    def open_chunks(self, descriptor: Descriptor) -> Iterator[Iterator[bytes]]:
        with self._open(_blob_path(descriptor.digest, where=self._where)) as handle:
            yield chunked(handle, descriptor.size)


class TarSource:
    """Members of an uncompressed tar, read in place as byte ranges (never extracted)."""

    def __init__(self, path: Path, options: RegistryOptions, where: str) -> None:
        self._path = path
        self._options = options
        self._where = self.where = where
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            with path.open("rb") as handle:
                magic = handle.read(4)
                if magic[:2] == b"\x1f\x8b" or magic == b"\x28\xb5\x2f\xfd":
                    raise RegistryError(
                        "compressed archives are not supported; decompress it first", where=where
                    )
                handle.seek(0)
                with tarfile.open(fileobj=handle, mode="r:") as archive:
                    for count, member in enumerate(archive):
                        if count >= _MAX_MEMBERS:
                            raise RegistryError("archive has too many entries", where=where)
                        self._add(member)
        except FileNotFoundError as exc:
            raise RegistryError("archive not found", where=where) from exc
        except IsADirectoryError as exc:
            raise RegistryError("is a directory, not an archive", where=where) from exc
        except (tarfile.TarError, OSError) as exc:
            raise RegistryError(f"not a readable tar archive: {exc}", where=where) from exc

    def _add(self, member: tarfile.TarInfo) -> None:
        name = _normalize(member.name, where=self._where)
        if name is None:
            return
        if name in self._members:
            raise RegistryError(f"archive holds {name!r} twice", where=self._where)
        if member.issym() or member.islnk():
            target = member.linkname
            if member.issym():
                target = posixpath.join(posixpath.dirname(name), target)
            if _normalize(target, where=self._where, link=True) is None:
                raise RegistryError(
                    f"archive link {name!r} points outside the archive", where=self._where
                )
        self._members[name] = member

    def member(self, name: str) -> tarfile.TarInfo:
        """The regular-file member ``name`` (links inside the archive followed)."""
        current = _normalize(name, where=self._where)
        for _ in range(_MAX_LINK_DEPTH):
            member = self._members.get(current or "")
            if member is None:
                raise RegistryError(f"{name!r} missing from the archive", where=self._where)
            if member.isreg() and not member.issparse():
                return member
            if member.issym():
                target = posixpath.join(posixpath.dirname(current or ""), member.linkname)
            elif member.islnk():
                target = member.linkname
            else:
                raise RegistryError(f"{name!r} is not a regular file", where=self._where)
            current = _normalize(target, where=self._where, link=True)
        raise RegistryError(f"too many links resolving {name!r}", where=self._where)

    def has(self, name: str) -> bool:
        """Whether the archive holds ``name``."""
        return _normalize(name, where=self._where) in self._members

    @contextlib.contextmanager
    def open_member(self, name: str, limit: int) -> Iterator[Iterator[bytes]]:
        """Stream at most ``limit + 1`` bytes of a member (its own file handle: thread-safe)."""
        member = self.member(name)
        with self._path.open("rb") as handle:
            handle.seek(member.offset_data)
            yield _section(handle, min(member.size, limit + 1))

    def read_document(self, name: str, what: str) -> bytes:
        """A small member, size-limited."""
        limit = self._options.max_manifest_bytes
        with self.open_member(name, limit) as chunks:
            return read_limited(chunks, limit, where=self._where, what=what)

    def fetch_manifest(self, digest: Digest) -> tuple[bytes, str | None]:
        data = self.read_document(_blob_path(digest, where=self._where), "manifest")
        check_digest(data, digest, where=self._where, what="manifest")
        return data, None

    def open_chunks(
        self, descriptor: Descriptor
    ) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        return self.open_member(_blob_path(descriptor.digest, where=self._where), descriptor.size)


def _section(handle: Any, size: int) -> Iterator[bytes]:
    remaining = size
    while remaining > 0:
        data = handle.read(min(1 << 16, remaining))
        if not data:
            return
        remaining -= len(data)
        yield data


def _normalize(name: str, *, where: str, link: bool = False) -> str | None:
    """An archive path without ``./``; absolute or ``..`` paths are hostile and refused."""
    if name.startswith("/") or "\\" in name or "\x00" in name:
        if link:
            return None
        raise RegistryError(f"hostile path {name[:200]!r} in archive", where=where)
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if link and parts:
                parts.pop()
                continue
            if link:
                return None
            raise RegistryError(f"hostile path {name[:200]!r} in archive", where=where)
        parts.append(part)
    return "/".join(parts) if parts else None


def _split_location(text: str) -> tuple[Path, str | None]:
    """``PATH[:SUFFIX]``: the whole text when it names an existing file, else split at ``:``."""
    if Path(text).exists() or ":" not in text:
        return Path(text), None
    colons = [index for index, char in enumerate(text) if char == ":"]
    for index in reversed(colons):  # the longest existing prefix is the path
        if Path(text[:index]).exists():
            return Path(text[:index]), text[index + 1 :] or None
    path, _, suffix = text.partition(":")
    return Path(path), suffix or None


def _select_layout_entry(
    index: Mapping[str, Any], tag: str | None, *, where: str
) -> tuple[Descriptor, str | None]:
    entries = parse_index(json.dumps(index).encode(), where=where)
    raw = index.get("manifests") or []
    if tag is None:
        if len(entries) != 1:
            raise RegistryError(
                f"layout holds {len(entries)} manifests; name one with oci:PATH:TAG", where=where
            )
        return entries[0].descriptor, None
    names = []
    for entry, raw_entry in zip(entries, raw, strict=True):
        annotations = raw_entry.get("annotations") or {}
        name = annotations.get(_REF_NAME) if isinstance(annotations, dict) else None
        if isinstance(name, str):
            names.append(name)
            if name == tag or (name.rsplit(":", 1)[-1] == tag and "/" in name):
                return entry.descriptor, name
    raise RegistryError(
        f"no manifest tagged {tag!r} in the layout (tags: {', '.join(names) or 'none'})",
        where=where,
    )


def open_oci(location: str, options: RegistryOptions, *, archive: bool) -> Image:
    """Open ``oci:PATH[:TAG]`` (``archive`` False) or ``oci-archive:PATH[:TAG]``."""
    path, tag = _split_location(location)
    where = f"{'oci-archive' if archive else 'oci'}:{location}"
    source: DirSource | TarSource
    if archive:
        source = TarSource(path, options, where)
    else:
        if not path.is_dir():
            raise RegistryError("OCI layout directory not found", where=where)
        source = DirSource(path, options, where)
    index = load_json(
        source.read_document("index.json", "index.json"), where=where, what="index.json"
    )
    descriptor, _ = _select_layout_entry(index, tag, where=where)
    if descriptor.size > options.max_manifest_bytes:
        raise RegistryError(
            f"manifest of {descriptor.size} bytes exceeds the "
            f"{options.max_manifest_bytes}-byte limit",
            where=where,
        )
    data, _ = source.fetch_manifest(descriptor.digest)
    return assemble_image(where, descriptor.digest, data, descriptor.media_type, source, options)


@dataclass(frozen=True, slots=True)
class _DockerArchiveSource:
    """A ``docker save`` tar seen through its synthesised OCI manifest."""

    tar: TarSource
    manifest: bytes
    digest: Digest
    members: Mapping[str, str]

    def fetch_manifest(self, digest: Digest) -> tuple[bytes, str | None]:
        if digest != self.digest:
            raise RegistryError(f"no manifest {digest} in the archive", where=self.tar.where)
        return self.manifest, OCI_MANIFEST

    def open_chunks(
        self, descriptor: Descriptor
    ) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        name = self.members.get(descriptor.digest)
        if name is None:
            raise RegistryError(f"no blob {descriptor.digest} in the archive", where=self.tar.where)
        return self.tar.open_member(name, descriptor.size)


def _pick_docker_entry(entries: list[Any], wanted: str | None, *, where: str) -> Mapping[str, Any]:
    if not entries or not all(isinstance(e, dict) for e in entries):
        raise RegistryError("manifest.json lists no images", where=where)
    if wanted is None:
        if len(entries) != 1:
            raise RegistryError(
                f"archive holds {len(entries)} images; name one with docker-archive:PATH:REPO:TAG",
                where=where,
            )
        return dict(entries[0])
    try:
        canonical = str(parse_reference(wanted))
    except ImageReferenceError:
        canonical = wanted
    for entry in entries:
        for tag in entry.get("RepoTags") or []:
            if not isinstance(tag, str):
                continue
            with contextlib.suppress(ImageReferenceError):
                if tag == wanted or str(parse_reference(tag)) == canonical:
                    return dict(entry)
    raise RegistryError(f"no image {wanted!r} in the archive", where=where)


def _hash_member(tar: TarSource, name: str, *, where: str) -> tuple[Digest, int, bytes]:
    member = tar.member(name)
    hasher = hashlib.sha256()
    head = b""
    with tar.open_member(name, member.size) as chunks:
        for chunk in chunks:
            if len(head) < 4:
                head += chunk[:4]
            hasher.update(chunk)
    return Digest("sha256:" + hasher.hexdigest()), member.size, head


def open_docker_archive(location: str, options: RegistryOptions) -> Image:
    """Open ``docker-archive:PATH[:REPO:TAG]`` (see the module docstring for the digest)."""
    path, wanted = _split_location(location)
    where = f"docker-archive:{location}"
    tar = TarSource(path, options, where)
    if not tar.has("manifest.json"):
        raise RegistryError("not a docker save archive (no manifest.json)", where=where)
    try:
        document = json.loads(tar.read_document("manifest.json", "manifest.json"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError("manifest.json is not valid JSON", where=where) from exc
    if not isinstance(document, list):
        raise RegistryError("manifest.json is not a list", where=where)
    entry = _pick_docker_entry(document, wanted, where=where)
    config_name, layer_names = entry.get("Config"), entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise RegistryError("manifest.json entry lacks Config or Layers", where=where)
    config_bytes = tar.read_document(config_name, "image config")
    config = Descriptor(
        OCI_CONFIG, Digest("sha256:" + hashlib.sha256(config_bytes).hexdigest()), len(config_bytes)
    )
    members: dict[str, str] = {config.digest: config_name}
    layers = []
    for layer_name in layer_names:
        if not isinstance(layer_name, str):
            raise RegistryError("manifest.json layer entry is not a path", where=where)
        digest, size, head = _hash_member(tar, layer_name, where=where)
        media_type = next((t for magic, t in _LAYER_TYPES if head.startswith(magic)), _LAYER_TAR)
        layers.append({"mediaType": media_type, "digest": digest, "size": size})
        members[digest] = layer_name
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": config.media_type,
                "digest": config.digest,
                "size": config.size,
            },
            "layers": layers,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    digest = Digest("sha256:" + hashlib.sha256(manifest).hexdigest())
    source = _DockerArchiveSource(tar=tar, manifest=manifest, digest=digest, members=members)
    return assemble_image(where, digest, manifest, OCI_MANIFEST, source, options)
