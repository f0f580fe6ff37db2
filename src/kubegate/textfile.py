"""Read a small text file a user named (configuration, exceptions, VEX, variables), bounded.

The size is checked on the bytes actually read, never on ``stat()`` alone: a device such as
``/dev/zero`` reports size 0 and never ends, and a FIFO would block the open. Only regular
files (symlinks followed) are read. Called by ``config``, ``ignorefile``, ``trivyignore``,
``vex`` and the CLI's ``--var-file``; :func:`parse_yaml` parses the YAML ones of them.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from kubegate import yamlload
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


class _ConfigLoader(yaml.SafeLoader):
    """YAML 1.1 safe loading, except that an impossible date is a YAML error with its line.

    PyYAML turns an unquoted ``2020-02-30`` into ``datetime.date(2020, 2, 30)`` and lets the
    resulting ``ValueError`` escape without a position; here it becomes a ``ConstructorError``
    at the node, so the user reads which line of which file is wrong.
    """

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid date {node.value!r} ({exc})", node.start_mark
            ) from exc


_ConfigLoader.add_constructor("tag:yaml.org,2002:timestamp", _ConfigLoader.construct_yaml_timestamp)


def parse_yaml(text: str, where: str) -> Any:
    """The one YAML document in a user's file; ConfigError (exit 3) naming line and problem."""
    try:
        # Composed and checked for alias bombs first (yamlload), then built with the loader
        # that reports impossible dates with their line.
        return yamlload.safe_load(text, _ConfigLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {_yaml_problem(exc)}", where=where) from exc
    except RecursionError as exc:
        raise ConfigError("invalid YAML: nested too deeply", where=where) from exc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or exc.context or "invalid"
        return f"line {mark.line + 1} column {mark.column + 1}: {problem}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
