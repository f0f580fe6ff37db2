"""The render cache: kustomize build output kept on disk, keyed by everything the build can read.

Called by the fleet walker (``fleet.py``, ``_Walk._build_one``) around each Flux Kustomization's
kustomize build, so that a commit changing one app runs kustomize again for that app's
Kustomization only (issue 16). Everything after the build (provenance, postBuild substitution,
images) is recomputed from the cached text on every run, as for a fresh build.

The key is the sha256 of a JSON document holding:

* :data:`FORMAT` and the kustomize binary's own version text (:meth:`Kustomize.version`);
* the built directory (source-relative) and the kustomization kubegate wrote there
  (:func:`~kubegate.render.fluxks.prepare_build`: the directory's own or the generated one,
  the Flux spec's ``targetNamespace``, ``namePrefix``/``nameSuffix``, ``patches``,
  ``components`` and ``images`` already in it);
* every path the build's kustomization files name, as :mod:`kubegate.render.confine` followed
  them for confinement (resources and bases recursively, components, crds, configurations,
  patches of every form, replacements, generators' files and env files, openapi, plugin
  configs and the files they name): the path as named, the path once links are resolved, and
  what is there (the sha256 of a file; of a directory, the sha256 of each kustomization file
  name present: kustomize reads one and refuses two; nothing);
* for each kustomization directory entered, the same description.

Left out on purpose: where the tree is (kustomize names files relative to the build, so two
trees holding the same files build the same text; an output naming the tree's or the build
farm's absolute path is never stored), and postBuild variables and the rest of the Flux spec,
which apply per object after the build (``fleet.py`` ``_Walk._materialize``).

Never cached (always built): a build the walk could not follow completely (a remote resource,
helm charts, a field kustomize's type does not have, a plugin config of a non-builtin kind), a
named file that cannot be read or is larger than :data:`MAX_HASHED_FILE_BYTES`, a kustomize
whose version cannot be read, and failed builds. The key is computed again after the build and
the output stored only when it did not change meanwhile (a file edited during the build).

Store: ``<cache dir>/renders/<key hex>``: a header line, the sha256 of the output, the output
zlib-compressed; written to a private temporary file and renamed, so readers never see a part.
An entry that does not decode or hash is a miss: deleted and built again. The directory is kept
under :data:`MAX_BYTES`: past it, the least recently used entries (mtime, refreshed on each
hit) go. ``KUBEGATE_RENDER_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from kubegate.cachedir import cache_dir
from kubegate.render.fluxks import PreparedBuild
from kubegate.render.kustomize import MAX_OUTPUT_BYTES, Kustomize
from kubegate.render.provenance import KUSTOMIZATION_FILES

_logger = logging.getLogger(__name__)

#: Bumped whenever what the key covers or the entry layout changes: old entries then miss.
FORMAT: Final = 1
#: Environment switch: ``0``/``false``/``no``/``off`` turns the render cache off.
ENV_SWITCH: Final = "KUBEGATE_RENDER_CACHE"
#: Bound of the cache directory. A 2,000-workload fleet's 40 builds take about 0.6 MB.
MAX_BYTES: Final = 256 * 1024 * 1024
#: A file named by a build is hashed only up to this size; a bigger one disables the cache for
#: that build (kustomize still reads it, under its own output limit).
MAX_HASHED_FILE_BYTES: Final = 64 * 1024 * 1024
_DIRECTORY: Final = "renders"
_MAGIC: Final = b"kubegate-render-cache 1\n"
_CHUNK: Final = 1 << 20


def enabled() -> bool:
    """Whether the environment leaves the render cache on (``KUBEGATE_RENDER_CACHE``)."""
    value = os.environ.get(ENV_SWITCH, "").strip().lower()
    return value not in ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What a cache did so far in this process (for the bench and the tests)."""

    hits: int = 0
    misses: int = 0
    stored: int = 0
    #: Builds whose inputs could not all be followed: built every time.
    uncacheable: int = 0
    #: Entries found damaged (deleted and built again).
    corrupt: int = 0


class RenderCache:
    """kustomize outputs in one directory, keyed by :func:`build_key` (thread-safe)."""

    def __init__(self, directory: Path, max_bytes: int = MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._stats = CacheStats()
        #: Bytes written since the directory's size was last checked (None: never checked).
        self._written: int | None = None

    @property
    def stats(self) -> CacheStats:
        """Counters so far."""
        return self._stats

    def _count(self, **delta: int) -> None:
        with self._lock:
            values = {name: getattr(self._stats, name) + step for name, step in delta.items()}
            self._stats = replace(self._stats, **values)

    def entry(
        self, tree: Path, prepared: PreparedBuild, kustomization: str, kustomize: Kustomize
    ) -> CacheEntry | None:
        """The entry of this build, or None when it cannot be cached (it is built every time).

        ``tree`` is the source tree the build reads, ``kustomization`` the text written in
        ``prepared.directory``.
        """
        key = build_key(tree, prepared, kustomization, kustomize.version())
        if key is None:
            self._count(uncacheable=1)
            return None
        return CacheEntry(self, key, (tree, prepared, kustomization, kustomize))

    def path(self, key: str) -> Path:
        """Where the entry of ``key`` lives (whether or not it is there)."""
        return self.directory / key

    def load(self, key: str) -> str | None:
        """The cached output of ``key``; None on a miss (a damaged entry is deleted)."""
        path = self.path(key)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_OUTPUT_BYTES + len(_MAGIC) + 66)
        except OSError:
            self._count(misses=1)
            return None
        output = _decode(data)
        if output is None:
            _logger.warning("render cache: entry %s is damaged; building again", path.name)
            with contextlib.suppress(OSError):
                path.unlink()
            self._count(misses=1, corrupt=1)
            return None
        # Least recently used goes first when the directory is pruned.
        with contextlib.suppress(OSError):
            os.utime(path)
        self._count(hits=1)
        return output

    def store(self, key: str, output: str) -> None:
        """Keep ``output`` under ``key`` (atomically; failures only logged: it is a cache)."""
        payload = output.encode("utf-8")
        if len(payload) > min(MAX_OUTPUT_BYTES, self.max_bytes // 4):
            return
        data = _MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
        data += zlib.compress(payload, 1)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.directory, prefix=".partial-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(name, self.path(key))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(name)
                raise
        except OSError as exc:
            _logger.warning("render cache: cannot store an entry in %s: %s", self.directory, exc)
            return
        self._count(stored=1)
        with self._lock:
            first = self._written is None
            self._written = (self._written or 0) + len(data)
            due = first or self._written > self.max_bytes // 8
            if due:
                self._written = 0
        if due:
            self.prune()

    def prune(self) -> None:
        """Remove the least recently used entries while the directory exceeds its bound."""
        entries: list[tuple[float, int, Path]] = []
        try:
            with os.scandir(self.directory) as found:
                for item in found:
                    with contextlib.suppress(OSError):
                        info = item.stat(follow_symlinks=False)
                        if stat.S_ISREG(info.st_mode):
                            entries.append((info.st_mtime, info.st_size, Path(item.path)))
        except OSError:
            return
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return
        for _, size, path in sorted(entries):
            if total <= self.max_bytes * 3 // 4:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
        _logger.debug("render cache pruned to %d bytes", total)


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One build's place in the cache."""

    cache: RenderCache
    key: str
    #: What the key was computed from: computed again before storing.
    inputs: tuple[Path, PreparedBuild, str, Kustomize]

    def load(self) -> str | None:
        """The cached output, or None (build it)."""
        return self.cache.load(self.key)

    def save(self, output: str, trees: Sequence[Path]) -> None:
        """Store the output just built, unless its inputs changed meanwhile or it names
        ``trees`` (the farm, the source tree: an output naming them is not portable)."""
        if any(str(tree) in output for tree in trees):
            _logger.debug("render cache: output names a build tree; not stored")
            return
        tree, prepared, kustomization, kustomize = self.inputs
        if build_key(tree, prepared, kustomization, kustomize.version()) != self.key:
            _logger.debug("render cache: inputs changed during the build; not stored")
            return
        self.cache.store(self.key, output)


def default_cache() -> RenderCache | None:
    """The cache in kubegate's cache dir, or None when ``KUBEGATE_RENDER_CACHE`` turns it off."""
    if not enabled():
        return None
    try:
        return RenderCache(cache_dir() / _DIRECTORY)
    except OSError as exc:
        _logger.warning("render cache unusable, building every time: %s", exc)
        return None


def build_key(
    tree: Path, prepared: PreparedBuild, kustomization: str, version: str | None
) -> str | None:
    """The key of a build (module docstring), or None when it must not be cached."""
    reads = prepared.reads
    if version is None or reads is None or reads.unfollowed or prepared.remote:
        if reads is not None and reads.unfollowed:
            _logger.debug("render cache off for %s: %s", prepared.rel or ".", reads.unfollowed[0])
        return None
    root = Path(os.path.realpath(tree))
    described: dict[str, object] = {}
    for rel in sorted({*reads.directories, *(v for v in reads.paths.values() if v is not None)}):
        what = _describe(root, rel)
        if what is None:
            return None
        described[rel] = what
    document = {
        "format": FORMAT,
        "kustomize": version,
        "directory": prepared.rel,
        "kustomization": kustomization,
        "paths": sorted([named, real or ""] for named, real in reads.paths.items()),
        "found": described,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _describe(root: Path, rel: str) -> object | None:
    """What is at ``rel`` now (see the module docstring); None: it cannot be vouched for."""
    path = root / rel if rel != "." else root
    try:
        if os.path.realpath(path) != str(path):
            return None  # a link appeared since the walk resolved it
        info = os.stat(path)
    except FileNotFoundError:
        return "absent"
    except OSError:
        return None
    if stat.S_ISREG(info.st_mode):
        digest = _file_digest(path, info.st_size)
        return None if digest is None else ["file", digest]
    if stat.S_ISDIR(info.st_mode):
        names = {}
        for name in KUSTOMIZATION_FILES:
            candidate = path / name
            if os.path.lexists(candidate):
                digest = _file_digest(candidate, None)
                if digest is None:
                    return None
                names[name] = digest
        return ["directory", names]
    return None


def _file_digest(path: Path, size: int | None) -> str | None:
    if size is not None and size > MAX_HASHED_FILE_BYTES:
        return None
    hasher = hashlib.sha256()
    read = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                read += len(chunk)
                if read > MAX_HASHED_FILE_BYTES:
                    return None
                hasher.update(chunk)
    except OSError:
        return None
    return hasher.hexdigest()


def _decode(data: bytes) -> str | None:
    """The output an entry holds, or None when it is damaged in any way."""
    if not data.startswith(_MAGIC):
        return None
    rest = data[len(_MAGIC) :]
    expected, newline, packed = rest[:64], rest[64:65], rest[65:]
    if newline != b"\n":
        return None
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(packed, MAX_OUTPUT_BYTES + 1)
    except zlib.error:
        return None
    if not inflater.eof or inflater.unconsumed_tail or len(payload) > MAX_OUTPUT_BYTES:
        return None
    if hashlib.sha256(payload).hexdigest().encode() != expected:
        return None
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
