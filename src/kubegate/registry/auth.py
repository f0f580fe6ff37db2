"""Registry credentials and the parts of the auth flows that need no network.

Reads the Docker config file (``auths``: ``auth`` as base64 ``user:password`` or separate
``username``/``password``; keys with or without scheme, ``https://index.docker.io/v1/`` meaning
Docker Hub), parses ``WWW-Authenticate`` challenges and caches bearer tokens per (realm, service,
scope, user) until they expire. Used by :mod:`kubegate.registry.client`, which does the HTTP.
Credentials live in :class:`Credentials`, whose ``repr`` hides the secret; nothing here logs them.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubegate.errors import ConfigError
from kubegate.reference import DOCKER_HUB

_logger = logging.getLogger(__name__)

_HUB_KEYS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_MAX_CONFIG_BYTES = 1024 * 1024
_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
#: Tokens are refreshed this long before they expire; the spec's minimum lifetime is 60 s.
_EXPIRY_MARGIN = 5.0
_DEFAULT_TOKEN_LIFETIME = 60.0


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and secret for one registry (the secret never appears in ``repr``)."""

    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        """The ``Authorization`` value for HTTP Basic."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` challenge (``Bearer`` or ``Basic``)."""

    scheme: str
    params: dict[str, str]

    @property
    def realm(self) -> str | None:
        """The token endpoint (Bearer) or the realm name (Basic)."""
        return self.params.get("realm")


def registry_key(key: str) -> str:
    """The registry host an ``auths`` key stands for (scheme and path dropped, Hub aliases
    mapped to ``docker.io``)."""
    text = key.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    host = text.split("/", 1)[0].lower()
    return DOCKER_HUB if host in _HUB_KEYS else host


def load_credentials(config_path: Path, registry: str) -> Credentials | None:
    """The credentials the Docker config holds for ``registry`` (a canonical host), if any."""
    try:
        with config_path.open("rb") as handle:
            raw = handle.read(_MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"cannot read Docker config: {exc.strerror}", where=str(config_path)
        ) from exc
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ConfigError("Docker config larger than 1 MiB refused", where=str(config_path))
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        # The message names the position only: the document holds secrets.
        raise ConfigError("Docker config is not valid JSON", where=str(config_path)) from exc
    auths = document.get("auths") if isinstance(document, dict) else None
    if not isinstance(auths, dict):
        return None
    wanted = registry.lower()
    for key, entry in auths.items():
        if not isinstance(key, str) or registry_key(key) != wanted or not isinstance(entry, dict):
            continue
        credentials = _entry_credentials(entry, key, config_path)
        if credentials is not None:
            _logger.debug("using credentials for %s from %s", registry, config_path)
            return credentials
    return None


def _entry_credentials(entry: dict[str, object], key: str, config_path: Path) -> Credentials | None:
    username, password = entry.get("username"), entry.get("password")
    if isinstance(username, str) and isinstance(password, str) and username:
        return Credentials(username, password)
    encoded = entry.get("auth")
    if not isinstance(encoded, str) or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"auths entry {key!r}: 'auth' is not base64 of user:password", where=str(config_path)
        ) from exc
    user, sep, secret = decoded.partition(":")
    if not sep or not user:
        raise ConfigError(
            f"auths entry {key!r}: 'auth' is not base64 of user:password", where=str(config_path)
        )
    return Credentials(user, secret)


def parse_challenges(header: str) -> tuple[Challenge, ...]:
    """Parse a ``WWW-Authenticate`` value into challenges (RFC 7235, the subset registries use)."""
    challenges: list[Challenge] = []
    for match in re.finditer(
        r"(?:^|,)\s*(Bearer|Basic)\b([^\n]*?)(?=,\s*(?:Bearer|Basic)\b|$)",
        header,
        flags=re.IGNORECASE,
    ):
        params = {
            m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3) or "")
            for m in _PARAM.finditer(match.group(2))
        }
        challenges.append(Challenge(scheme=match.group(1).lower(), params=params))
    return tuple(challenges)


class TokenCache:
    """Bearer tokens by (realm, service, scope, user), honouring ``expires_in``; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}

    def get(self, key: tuple[str, ...]) -> str | None:
        """A cached token that is still valid, or None."""
        with self._lock:
            entry = self._tokens.get(key)
            if entry is None:
                return None
            token, expires = entry
            if time.monotonic() >= expires:
                del self._tokens[key]
                return None
            return token

    def put(self, key: tuple[str, ...], token: str, expires_in: float | None) -> None:
        """Remember ``token`` for ``expires_in`` seconds (60 when the server does not say)."""
        lifetime = expires_in if expires_in and expires_in > 0 else _DEFAULT_TOKEN_LIFETIME
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + max(lifetime - _EXPIRY_MARGIN, 1.0))
