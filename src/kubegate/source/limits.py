"""Bounds on what a source may cost: download size, extracted size, entry count, time.

One frozen value carried by :class:`kubegate.source.SourceSpec`; the artifact extractor, the
tree copier and the git fetcher read it. Defaults fit any GitOps repository we know of by an
order of magnitude while keeping a hostile one from filling the disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubegate.transfer import DEFAULT_MIN_RATE, DEFAULT_RATE_WINDOW


@dataclass(frozen=True, slots=True)
class SourceLimits:
    """Limits applied to every source kind (bytes, entries, seconds)."""

    #: Compressed size of a Flux artifact download.
    max_artifact_bytes: int = 256 * 1024 * 1024
    #: Total size of the files of a revision (artifact decompressed, dir or git tree copied).
    max_extracted_bytes: int = 1024 * 1024 * 1024
    #: Files, links and directories in an artifact; files and links in a copied tree.
    max_entries: int = 100_000
    #: Connect/read timeout of each HTTP operation of an artifact download.
    http_timeout: float = 60.0
    #: Wall-clock limit of a whole artifact download (a server may drip bytes forever).
    download_deadline: float = 600.0
    #: Bytes/s an artifact download must keep up over ``rate_window`` seconds of waiting
    #: (kubegate.transfer): a drip is stopped long before the deadline.
    min_rate: int = DEFAULT_MIN_RATE
    rate_window: float = DEFAULT_RATE_WINDOW
    #: Wall-clock limit of each git command (ls-remote, fetch, checkout).
    git_timeout: float = 300.0
