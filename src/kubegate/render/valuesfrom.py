"""``--values-from NS/KIND/NAME=FILE``: the data of a ConfigMap or Secret that lives only in the
cluster, for a HelmRelease's ``valuesFrom``.

A HelmRelease's ``valuesFrom`` names ConfigMaps and Secrets; those the revision renders are read
from it, the others only the cluster holds. The user supplies them as files (like
``--var-file`` for postBuild variables): a YAML mapping of data keys to text values, the Secret's
values as plain text (not base64), e.g. ``values.yaml: |`` followed by the values. The CLI checks
every file with :func:`read_values_file` before rendering (exit 3 on a bad one) and passes the
paths in :class:`kubegate.render.fetch.HelmOptions`; the HelmRelease stage reads them with the
same function. The files are the user's own (trusted), never the judged revision's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from kubegate.errors import ConfigError
from kubegate.textfile import parse_yaml, read_text

#: The Kubernetes API refuses a ConfigMap or Secret larger than 1 MiB.
MAX_VALUES_FILE_BYTES: Final = 1024 * 1024
#: The kinds ``valuesFrom`` may name (helm-controller ``ValuesReference.Kind``).
KINDS: Final = ("ConfigMap", "Secret")
#: A ConfigMap/Secret data key (k8s.io/apimachinery ``IsConfigMapKey``).
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def read_values_file(path: Path) -> dict[str, str]:
    """The data keys and text values of ``path``; ConfigError (exit 3) naming the file."""
    where = str(path)
    document = parse_yaml(read_text(path, MAX_VALUES_FILE_BYTES, "values file"), where)
    if not isinstance(document, dict):
        raise ConfigError(
            "expected a mapping of data keys to text values (e.g. `values.yaml: |`)", where=where
        )
    data: dict[str, str] = {}
    for key, value in document.items():
        if not isinstance(key, str) or not _DATA_KEY.fullmatch(key) or len(key) > 253:
            raise ConfigError(
                f"invalid data key {key!r} (letters, digits, '-', '_', '.')", where=where
            )
        if not isinstance(value, str):
            raise ConfigError(
                f"{key}: expected a text value (a string or a `|` block), "
                f"got {type(value).__name__}",
                where=where,
            )
        data[key] = value
    return data
