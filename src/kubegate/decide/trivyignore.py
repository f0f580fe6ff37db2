"""Which exceptions file a scan reads, and Trivy's two ignore formats mapped onto kubegate's.

The CLI calls :func:`find_exceptions_file` (``.kubegateignore.yaml``, else ``.trivyignore.yaml``,
else ``.trivyignore`` in the user config directory or the ``--config-ref`` checkout, never the
working directory) and :func:`load_exceptions`, which picks the
format by the file's name: a name starting with ``.trivyignore`` is Trivy's (YAML when it ends in
``.yaml``/``.yml``, else the line format), any other name is kubegate's
(``kubegate.decide.ignorefile``).

- ``.trivyignore``: one id a line, optionally ``exp:YYYY-MM-DD``; ``#`` comment lines directly
  above an id become its reason.
- ``.trivyignore.yaml``: ``vulnerabilities[]`` with ``id``, ``purls``, ``paths``,
  ``expired_at`` and ``statement`` (the reason). ``misconfigurations``, ``secrets`` and
  ``licenses`` do not apply to image vulnerabilities and are reported as ignored.

Trivy treats an entry as expired from its expiry date on (the date is midnight UTC), so an entry
with ``exp:2027-01-01`` maps to kubegate's ``expires: 2026-12-31`` (valid through that day). An
entry without expiry is permanent: it applies without end and every report lists it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from kubegate.decide.ignorefile import (
    DEFAULT_NAME,
    IgnoreFile,
    VulnerabilityException,
    load_ignore_file,
    vulnerability_id,
)
from kubegate.errors import ConfigError
from kubegate.textfile import parse_yaml, read_text

TRIVY_PREFIX: Final = ".trivyignore"
#: Looked up in the user config directory (or --config-ref) in this order; the first is read.
DEFAULT_NAMES: Final = (DEFAULT_NAME, ".trivyignore.yaml", ".trivyignore")
_MAX_BYTES: Final = 4 * 1024 * 1024
_NOT_VULNERABILITIES: Final = ("misconfigurations", "secrets", "licenses")


def find_exceptions_file(directory: Path) -> Path | None:
    """The first of :data:`DEFAULT_NAMES` present in ``directory``, if any."""
    for name in DEFAULT_NAMES:
        candidate = directory / name
        if candidate.exists() or candidate.is_symlink():  # refused later unless a regular file
            return candidate
    return None


def is_trivy_file(path: Path) -> bool:
    """Whether ``path`` is read in one of Trivy's formats (by its name, as Trivy names them)."""
    return path.name.startswith(TRIVY_PREFIX)


def load_exceptions(path: Path, shown: Path | None = None) -> IgnoreFile:
    """Read ``path`` in the format its name says (ConfigError, exit 3, if unreadable).

    ``shown`` is how reports name the file when ``path`` is a private copy (``--config-ref``:
    ``origin/main:.kubegateignore.yaml``).
    """
    if not is_trivy_file(path):
        return load_ignore_file(path, shown)
    text = _read(path)
    if path.name.endswith((".yaml", ".yml")):
        return _load_yaml(shown or path, text)
    return _load_lines(shown or path, text)


def _read(path: Path) -> str:
    return read_text(path, _MAX_BYTES, "ignore file")


def _load_lines(path: Path, text: str) -> IgnoreFile:
    entries: list[VulnerabilityException] = []
    problems: list[str] = []
    comments: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            comments = []
            continue
        if line.startswith("#"):
            comments.append(line.lstrip("#").strip())
            continue
        where = f"{path}:{number}"
        fields = line.split()
        reason = " ".join(c for c in comments if c) or f"listed in {path.name}"
        comments = []
        try:
            ident = vulnerability_id(fields[0])
            expires = None
            for extra in fields[1:]:
                if not extra.startswith("exp:"):
                    raise ValueError(f"unknown field {extra!r} (only exp:YYYY-MM-DD)")
                expires = _trivy_expiry(extra[4:])
        except ValueError as exc:
            problems.append(f"{where}: {exc} (entry ignored: it suppresses nothing)")
            continue
        entries.append(VulnerabilityException(ident, expires, reason, where=where))
    return IgnoreFile(str(path), tuple(entries), (), tuple(problems))


def _load_yaml(path: Path, text: str) -> IgnoreFile:
    document = parse_yaml(text, str(path))
    if document is None:
        return IgnoreFile(path=str(path))
    if not isinstance(document, Mapping):
        raise ConfigError("expected a mapping with vulnerabilities", where=str(path))
    problems: list[str] = []
    for key in sorted(map(str, document)):
        if key in _NOT_VULNERABILITIES:
            problems.append(f"{path}: {key} do not apply to image vulnerabilities (ignored)")
        elif key != "vulnerabilities":
            problems.append(f"{path}: unknown key {key!r} ignored")
    raw_entries = document.get("vulnerabilities") or []
    if not isinstance(raw_entries, list):
        problems.append(f"{path}: vulnerabilities must be a list (ignored)")
        raw_entries = []
    entries: list[VulnerabilityException] = []
    for index, raw in enumerate(raw_entries, 1):
        where = f"{path}: vulnerabilities[{index}]"
        try:
            entries.append(_yaml_entry(raw, where, path.name))
        except ValueError as exc:
            problems.append(f"{where}: {exc} (entry ignored: it suppresses nothing)")
    return IgnoreFile(str(path), tuple(entries), (), tuple(problems))


def _yaml_entry(raw: Any, where: str, name: str) -> VulnerabilityException:
    if not isinstance(raw, Mapping):
        raise ValueError("entry must be a mapping")
    unknown = set(map(str, raw)) - {"id", "purls", "paths", "expired_at", "statement"}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    ident = vulnerability_id(raw.get("id"))
    statement = raw.get("statement")
    if statement is not None and (not isinstance(statement, str) or not statement.strip()):
        raise ValueError("statement must be a non-empty string")
    purls = _strings(raw, "purls")
    if any(not p.startswith("pkg:") for p in purls):
        raise ValueError("purls must be package URLs (pkg:...)")
    expired_at = raw.get("expired_at")
    return VulnerabilityException(
        id=ident,
        expires=None if expired_at is None else _trivy_expiry(expired_at),
        reason=statement.strip() if isinstance(statement, str) else f"listed in {name}",
        packages=purls,
        paths=_strings(raw, "paths"),
        where=where,
    )


def _strings(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{key} must be a list of strings")
    return tuple(v.strip() for v in value)


def _trivy_expiry(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    else:
        try:
            day = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"invalid expiry {value!r} (expected YYYY-MM-DD)") from None
    # Trivy: expired once the date is reached; kubegate's expiry is the last valid day.
    return day - dt.timedelta(days=1)
