"""The inventory cache: one SQLite file under :func:`kubegate.cachedir.cache_dir`.

Used by :func:`kubegate.inventory.inventory_image`. Two tables (DESIGN.md "Caches"):

* ``layers``: what one layer contributes (its entries, whiteouts, links and the captured file
  contents), keyed by layer digest + walker version + every extractor's name:version, so that a
  warm run merges and extracts without opening any blob;
* ``images``: the final inventory, keyed by manifest digest + the same versions.

Several kubegate processes may share the file: WAL journal, a busy timeout and one short
transaction per write. The cache is only an accelerator: a corrupt file is deleted and rebuilt,
and a cache that still fails is switched off with a warning, never fatal.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Final, TypeVar

from kubegate.cachedir import cache_dir
from kubegate.inventory.extractors import fingerprint
from kubegate.inventory.walker import WALKER_VERSION, LayerContent, LayerEntry
from kubegate.models import Digest, OSInfo, Package

_logger = logging.getLogger(__name__)

FILENAME: Final = "inventory.sqlite3"
_SCHEMA: Final = 2
_BUSY_TIMEOUT_MS: Final = 30_000
_T = TypeVar("_T")
_PACKAGE_FIELDS: Final = tuple(f.name for f in fields(Package))
#: Decoded layers kept in memory per process: images of one scan share their base layers.
_MEMORY_LAYERS: Final = 64


class _OutdatedSchema(sqlite3.DatabaseError):
    """A cache written by another kubegate version: expected after upgrades, rebuilt quietly."""


def versions_key() -> str:
    """Walker and extractor versions: any change makes every cached entry a miss."""
    return f"walker:{WALKER_VERSION},{fingerprint()}"


class InventoryCache:
    """Per-layer and per-image inventory cache (safe to share between processes)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else cache_dir() / FILENAME
        self._conn: sqlite3.Connection | None = None
        self._versions = versions_key()
        # One connection shared by the scan's worker threads, serialised by this lock.
        self._lock = threading.RLock()
        # Layer key -> decoded contribution (immutable), so that the images of one scan sharing
        # a base layer decode its cached entry once, not once per image.
        self._memory: dict[str, LayerContent] = {}
        self._open(rebuild_on_error=True)

    # -- connection ---------------------------------------------------------------------------

    def _open(self, *, rebuild_on_error: bool) -> None:
        try:
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_MS / 1000, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL still never corrupts the file; a power loss may only drop the
            # last writes, which a cache can afford. FULL fsynced every put: ~5 ms each, under
            # the lock the scan's threads share (200 puts in a 60-image cold scan).
            conn.execute("PRAGMA synchronous=NORMAL")
            with conn:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS layers (key TEXT PRIMARY KEY, data BLOB NOT NULL)"
                )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS images (key TEXT PRIMARY KEY, data BLOB NOT NULL)"
                )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS platforms"
                    " (key TEXT PRIMARY KEY, data BLOB NOT NULL)"
                )
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (str(_SCHEMA),)
                )
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None or row[0] != str(_SCHEMA):
                conn.close()
                raise _OutdatedSchema(f"cache schema {row and row[0]!r} is not {_SCHEMA}")
            self._conn = conn
        except sqlite3.Error as exc:
            if not rebuild_on_error:
                _logger.warning(
                    "inventory cache %s unusable, running without it: %s",
                    self.path,
                    exc,
                )
                self._conn = None
                return
            if isinstance(exc, _OutdatedSchema):
                _logger.info("inventory cache %s: %s, rebuilding it", self.path, exc)
            else:
                _logger.warning("inventory cache %s is corrupt (%s): rebuilding it", self.path, exc)
            self._rebuild()

    def _rebuild(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._memory.clear()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._open(rebuild_on_error=False)

    def _guard(self, action: Callable[[sqlite3.Connection], _T], default: _T) -> _T:
        """Run ``action``; a corrupt database is rebuilt once, then the cache is skipped."""
        with self._lock:
            return self._guarded(action, default)

    def _guarded(self, action: Callable[[sqlite3.Connection], _T], default: _T) -> _T:
        for attempt in (1, 2):
            if self._conn is None:
                return default
            try:
                return action(self._conn)
            except sqlite3.Error as exc:
                if attempt == 2:
                    _logger.warning("inventory cache %s failed again: %s", self.path, exc)
                    self.close()
                    return default
                _logger.warning("inventory cache %s failed (%s): rebuilding it", self.path, exc)
                self._rebuild()
        return default

    def close(self) -> None:
        """Close the database (the object then behaves as an empty cache)."""
        with self._lock:
            self._memory.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- layers -------------------------------------------------------------------------------

    def _layer_key(self, digest: Digest) -> str:
        return f"{digest}|{self._versions}"

    def get_layer(self, digest: Digest) -> LayerContent | None:
        """The cached contribution of a layer, or ``None``."""
        key = self._layer_key(digest)
        with self._lock:
            remembered = self._memory.get(key)
        if remembered is not None:
            return remembered
        blob = self._guard(lambda c: _fetch(c, "layers", key), None)
        if blob is None:
            return None
        try:
            content = _decode_layer(digest, blob)
        except (ValueError, TypeError, KeyError, zlib.error) as exc:
            _logger.warning("cached layer %s unreadable (%s): ignoring it", digest, exc)
            return None
        self._remember(key, content)
        return content

    def put_layer(self, content: LayerContent) -> None:
        """Store a layer's contribution (replacing an older capture of the same layer)."""
        blob = _encode_layer(content)
        key = self._layer_key(content.digest)
        self._guard(lambda c: _store(c, "layers", key, blob), None)
        self._remember(key, content)

    def _remember(self, key: str, content: LayerContent) -> None:
        with self._lock:
            if self._conn is None:
                return  # switched off: behave as an empty cache
            self._memory.pop(key, None)
            if len(self._memory) >= _MEMORY_LAYERS:
                del self._memory[next(iter(self._memory))]  # the oldest
            self._memory[key] = content

    # -- images -------------------------------------------------------------------------------

    def _image_key(self, manifest_digest: Digest) -> str:
        return f"{manifest_digest}|{self._versions}"

    def get_image(self, manifest_digest: Digest) -> dict[str, Any] | None:
        """The cached final inventory of an image as a JSON object, or ``None``."""
        blob = self._guard(lambda c: _fetch(c, "images", self._image_key(manifest_digest)), None)
        if blob is None:
            return None
        try:
            value = json.loads(zlib.decompress(blob))
        except (ValueError, zlib.error) as exc:
            _logger.warning("cached image %s unreadable (%s)", manifest_digest, exc)
            return None
        return value if isinstance(value, dict) else None

    def put_image(self, manifest_digest: Digest, value: dict[str, Any]) -> None:
        """Store an image's final inventory (a JSON object)."""
        blob = zlib.compress(json.dumps(value, separators=(",", ":")).encode())
        key = self._image_key(manifest_digest)
        self._guard(lambda c: _store(c, "images", key, blob), None)

    def get_platforms(self, top_digest: Digest, selection: str) -> list[dict[str, Any]] | None:
        """The platform manifests an image (index) digest selects: ``platform``, ``manifest``
        and ``layers`` (``[media type, digest, size]`` each), as :meth:`put_platforms` stored.

        Digests are immutable, so this mapping never goes stale; ``selection`` is the
        ``--platform`` choice it was made under. It lets a warm scan skip every manifest request.
        """
        blob = self._guard(lambda c: _fetch(c, "platforms", f"{top_digest}|{selection}"), None)
        if blob is None:
            return None
        try:
            value = json.loads(blob)
        except ValueError:
            return None
        if not isinstance(value, list) or not all(_platform_entry(v) for v in value):
            return None
        return value

    def put_platforms(
        self, top_digest: Digest, selection: str, value: list[dict[str, Any]]
    ) -> None:
        """Remember which platform manifests (and their layers) an image digest selects."""
        blob = json.dumps(value).encode()
        key = f"{top_digest}|{selection}"
        self._guard(lambda c: _store(c, "platforms", key, blob), None)


def _platform_entry(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    layers = value.get("layers")
    return (
        isinstance(value.get("platform"), str)
        and isinstance(value.get("manifest"), str)
        and isinstance(layers, list)
        and all(
            isinstance(layer, list)
            and len(layer) == 3
            and isinstance(layer[0], str)
            and isinstance(layer[1], str)
            and isinstance(layer[2], int)
            for layer in layers
        )
    )


@dataclass(frozen=True, slots=True)
class SeenInventory:
    """What the cached images hold: for ordering the advisory feeds a DB update fetches first."""

    #: ``(os-release ID, VERSION_ID)`` pairs.
    systems: frozenset[tuple[str, str | None]]
    #: Package types (``deb``, ``apk``, ``pypi``, ...).
    package_types: frozenset[str]


def seen_inventory(path: Path | None = None) -> SeenInventory:
    """Distinct systems and package types of every cached image; read-only, empty if no cache.

    Called by ``kubegate db update``. Never creates the cache file; any problem reads as empty.
    """
    path = path if path is not None else cache_dir() / FILENAME
    systems: set[tuple[str, str | None]] = set()
    types: set[str] = set()
    if path.is_file():
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                blobs = [row[0] for row in conn.execute("SELECT data FROM images")]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            _logger.debug("inventory cache %s unreadable: %s", path, exc)
            blobs = []
        for blob in blobs:
            try:
                value = json.loads(zlib.decompress(blob))
                os_info = value.get("os") or {}
                if os_info.get("id"):
                    systems.add((str(os_info["id"]), os_info.get("version_id")))
                types.update(str(p["type"]) for p in value.get("packages", ()))
            except (ValueError, TypeError, KeyError, AttributeError, zlib.error):
                continue
    return SeenInventory(frozenset(systems), frozenset(types))


def _fetch(conn: sqlite3.Connection, table: str, key: str) -> bytes | None:
    row = conn.execute(f"SELECT data FROM {table} WHERE key = ?", (key,)).fetchone()  # noqa: S608
    return None if row is None else bytes(row[0])


def _store(conn: sqlite3.Connection, table: str, key: str, blob: bytes) -> None:
    with conn:  # one short transaction per write: concurrent processes wait at most briefly
        conn.execute(
            f"INSERT OR REPLACE INTO {table} (key, data) VALUES (?, ?)",  # noqa: S608
            (key, blob),
        )


def _encode_layer(content: LayerContent) -> bytes:
    entries = [
        [
            entry.path,
            entry.kind,
            entry.target,
            None if entry.data is None else base64.b64encode(entry.data).decode(),
        ]
        for entry in content.entries
    ]
    return zlib.compress(json.dumps(entries, separators=(",", ":")).encode(), 1)


def _decode_layer(digest: Digest, blob: bytes) -> LayerContent:
    entries = json.loads(zlib.decompress(blob))
    return LayerContent(
        digest=digest,
        entries=tuple(
            LayerEntry(
                path=str(path),
                kind=str(kind),
                target=None if target is None else str(target),
                data=None if data is None else base64.b64decode(data),
            )
            for path, kind, target, data in entries
        ),
    )


def encode_packages(os_info: OSInfo | None, packages: tuple[Package, ...]) -> dict[str, Any]:
    """The JSON form of an inventory (also the ``images`` cache value)."""
    # dataclasses.asdict deep-copies recursively: ten times slower on thousands of packages.
    return {
        "os": None if os_info is None else asdict(os_info),
        "packages": [{name: getattr(p, name) for name in _PACKAGE_FIELDS} for p in packages],
    }


def decode_packages(value: dict[str, Any]) -> tuple[OSInfo | None, tuple[Package, ...]]:
    """Inverse of :func:`encode_packages`; raises ``TypeError``/``KeyError`` if malformed."""
    raw_os = value["os"]
    os_info = (
        None
        if raw_os is None
        else OSInfo(**{**raw_os, "id_like": tuple(raw_os.get("id_like", ()))})
    )
    packages = tuple(
        Package(**{**raw, "files": tuple(raw.get("files", ()))}) for raw in value["packages"]
    )
    return os_info, packages
