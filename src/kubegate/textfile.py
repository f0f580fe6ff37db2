"""Read a small text file a user named (configuration, exceptions, VEX, variables), bounded.

The size is checked on the bytes actually read, never on ``stat()`` alone: a device such as
``/dev/zero`` reports size 0 and never ends, and a FIFO would block the open. Only regular
files (symlinks followed) are read. Called by ``config``, ``ignorefile``, ``trivyignore``,
``vex`` and the CLI's ``--var-file``.
"""

from __future__ import annotations

import stat
from pathlib import Path

from kubegate.errors import ConfigError


def read_text(path: Path, limit: int, what: str) -> str:
    """The UTF-8 text of ``path`` (at most ``limit`` bytes); ConfigError (exit 3) otherwise."""
    where = str(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise ConfigError(f"{what} is not a regular file", where=where)
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", where=where) from exc
    if len(data) > limit:
        raise ConfigError(f"{what} larger than {_size(limit)}", where=where)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text", where=where) from exc


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"
