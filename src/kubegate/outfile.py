"""Write a file the user named (``--output``, ``--pin-digests``): atomically, never through a link.

The text goes to a new temporary file in the target's directory (``mkstemp``: ``O_CREAT |
O_EXCL``, so it never opens an existing file or link), is flushed to disk and renamed over the
target. ``rename`` replaces the directory entry itself, so a symlink planted at the target is
replaced, never followed; a reader sees the old file or the whole new one, never a part. A target
that already is a symlink, or anything but a regular file, is refused before writing (exit 3) so
that a link placed by someone else is neither followed nor silently removed. Called by
``kubegate.cli.scan``; ``kubegate.trust`` decides whether the path may be written at all.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from kubegate.errors import UsageError

#: Used when the process umask cannot be read (not Linux).
_DEFAULT_UMASK = 0o022


def check_target(path: Path, what: str) -> None:
    """Refuse (exit 3) a target that is a symlink or not a regular file, or a missing directory."""
    where = f"{what} {path}"
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UsageError(f"cannot inspect: {exc.strerror}", where=where) from exc
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise UsageError("is a symbolic link: kubegate never writes through one", where=where)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise UsageError("exists and is not a regular file", where=where)
    if not path.parent.is_dir():
        raise UsageError("no such directory", where=where)


def write_atomic(path: Path, text: str, what: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically; UsageError (exit 3) on any failure."""
    check_target(path, what)
    where = f"{what} {path}"
    directory = path.parent
    try:
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write: {exc.strerror}", where=where) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp creates 0600; a report gets the mode any new file of the user gets.
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UsageError(f"cannot write: {exc.strerror}", where=where) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _umask() -> int:
    # Read, not set-and-restore: os.umask() would change it for every thread for a moment.
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _DEFAULT_UMASK
