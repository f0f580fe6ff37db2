"""``helm template`` output kept on disk, keyed by everything that run of helm reads.

Called by the HelmRelease stage (``stage.py``) around each ``helm template``: a warm run of an
unchanged fleet (charts already in the fetcher's cache by digest) then starts no helm at all
(issue 13's warm target). Everything after helm (post-renderers, provenance, images) is
recomputed from the cached text on every run, as for a fresh render.

The key is the sha256 of :data:`FORMAT`, the helm binary's real path and version, the
arguments of the run with the chart directory and values file named by placeholders, the
values file's text, and the chart directory itself: every file's path and sha256, after kubegate
replaced ``values.yaml`` for ``valuesFiles`` and unpacked subcharts, i.e. exactly what helm
reads. Not cached (helm runs every time): a chart directory holding a symbolic link or anything
but regular files and directories, or more than :data:`MAX_HASHED_BYTES` of files; an output
that names the private directory it was rendered in; failed runs.

A template that calls ``randAlphaNum``, ``genCA`` or ``now`` renders differently on each run;
the cache keeps one of those renders, which names the same images. Entries live in
``<cache dir>/helm-renders/`` in the render cache's format (``render/buildcache.py``: atomic
writes, a damaged entry is a miss, least recently used entries pruned past the bound), and the
same ``KUBEGATE_RENDER_CACHE=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from kubegate.cachedir import cache_dir
from kubegate.render.buildcache import RenderCache, enabled
from kubegate.render.helm.runner import Helm

_logger = logging.getLogger(__name__)

#: Bumped whenever what the key covers changes: old entries then miss.
FORMAT: Final = 1
#: A chart directory bigger than this is rendered every time (its hashing would cost more).
MAX_HASHED_BYTES: Final = 64 * 1024 * 1024
_DIRECTORY: Final = "helm-renders"
_CHUNK: Final = 1 << 20

_caches: dict[Path, RenderCache] = {}
_caches_lock = threading.Lock()


def helm_cache() -> RenderCache | None:
    """The cache in kubegate's cache dir (one per directory and process), or None when off."""
    if not enabled():
        return None
    try:
        directory = cache_dir() / _DIRECTORY
    except OSError as exc:
        _logger.warning("helm render cache unusable, running helm every time: %s", exc)
        return None
    with _caches_lock:
        cache = _caches.get(directory)
        if cache is None:
            cache = _caches[directory] = RenderCache(directory)
        return cache


def template_key(helm: Helm, chart: Path, values_file: Path, args: Sequence[str]) -> str | None:
    """The key of one ``helm template`` run (module docstring), or None: not cacheable."""
    tree = _chart_digest(chart)
    if tree is None:
        return None
    try:
        values = values_file.read_bytes()
    except OSError:
        return None
    placeholders = {str(chart): "<chart>", str(values_file): "<values>"}
    document = {
        "format": FORMAT,
        "helm": [os.path.realpath(helm.path), list(helm.version)],
        "args": [placeholders.get(arg, arg) for arg in args],
        "values": hashlib.sha256(values).hexdigest(),
        "chart": tree,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _chart_digest(chart: Path) -> str | None:
    """sha256 over every file of the chart directory (path and content), in a fixed order."""
    digest = hashlib.sha256()
    budget = MAX_HASHED_BYTES
    for directory, dirnames, filenames in os.walk(chart):
        dirnames.sort()
        base = Path(directory)
        for name in [*dirnames, *sorted(filenames)]:
            path = base / name
            rel = path.relative_to(chart).as_posix()
            try:
                info = os.lstat(path)
            except OSError:
                return None
            if stat.S_ISDIR(info.st_mode):
                digest.update(f"d {rel}\n".encode())
                continue
            if not stat.S_ISREG(info.st_mode):
                _logger.debug("helm render cache off: %s is not a regular file", rel)
                return None
            budget -= info.st_size
            if budget < 0:
                return None
            file_digest = _file_digest(path)
            if file_digest is None:
                return None
            digest.update(f"f {rel} {file_digest}\n".encode())
    return digest.hexdigest()


def _file_digest(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
