"""Registry credentials and the parts of the auth flows that need no network.

Reads the Docker config file (``credHelpers``/``credsStore`` via ``docker-credential-*`` helpers;
``auths``: ``auth`` as base64 ``user:password`` or separate ``username``/``password``; keys with or
without scheme, ``https://index.docker.io/v1/`` meaning Docker Hub), parses ``WWW-Authenticate``
challenges and caches bearer tokens per (realm, service, scope, user) until they expire. Used by
:mod:`kubegate.registry.client`, which does the HTTP.
Credentials live in :class:`Credentials`, whose ``repr`` hides the secret; nothing here logs them.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubegate.errors import ConfigError, RegistryAuthError
from kubegate.images.reference import DOCKER_HUB

_logger = logging.getLogger(__name__)

_HUB_KEYS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_MAX_CONFIG_BYTES = 1024 * 1024
_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
#: Tokens are refreshed this long before they expire; the spec's minimum lifetime is 60 s.
_EXPIRY_MARGIN = 5.0
_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HELPER_TIMEOUT = 20.0
#: The server URL Docker stores Docker Hub credentials under, in helpers as in ``auths``.
_HUB_SERVER = "https://index.docker.io/v1/"
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
    if not isinstance(document, dict):
        return None
    wanted = registry.lower()
    helper = _helper_for(document, wanted)
    if helper is not None:
        credentials = _from_helper(helper, wanted)
        if credentials is not None:
            _logger.debug("using credentials for %s from docker-credential-%s", registry, helper)
            return credentials
    auths = document.get("auths")
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if not isinstance(key, str) or registry_key(key) != wanted or not isinstance(entry, dict):
            continue
        credentials = _entry_credentials(entry, key, config_path)
        if credentials is not None:
            _logger.debug("using credentials for %s from %s", registry, config_path)
            return credentials
    return None


def _helper_for(document: dict[str, object], registry: str) -> str | None:
    """``credHelpers`` entry for the registry, else ``credsStore`` (Docker's precedence)."""
    helpers = document.get("credHelpers")
    name: object = None
    if isinstance(helpers, dict):
        name = next(
            (v for k, v in helpers.items() if isinstance(k, str) and registry_key(k) == registry),
            None,
        )
    if name is None:
        name = document.get("credsStore")
    if not isinstance(name, str) or not name:
        return None
    if not _HELPER_NAME.fullmatch(name):
        _logger.warning("ignoring credential helper with invalid name %r", name[:60])
        return None
    return name


def _from_helper(helper: str, registry: str) -> Credentials | None:
    """Ask ``docker-credential-HELPER get`` (the Docker credential helper protocol)."""
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        _logger.warning("credential helper docker-credential-%s not found on PATH", helper)
        return None
    server = _HUB_SERVER if registry == DOCKER_HUB else registry
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv, the helper name is validated
            [program, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistryAuthError(
            f"credential helper docker-credential-{helper} failed: {type(exc).__name__}",
            where=registry,
        ) from exc
    if result.returncode != 0:
        # "credentials not found" is the protocol's normal miss; the output may hold nothing
        # secret, but only its first line is kept.
        _logger.debug(
            "docker-credential-%s has no credentials for %s (%s)",
            helper,
            registry,
            result.stdout.decode(errors="replace").strip().splitlines()[:1],
        )
        return None
    try:
        answer = json.loads(result.stdout[:_MAX_CONFIG_BYTES])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryAuthError(
            f"credential helper docker-credential-{helper} answered no JSON", where=registry
        ) from exc
    username = answer.get("Username") if isinstance(answer, dict) else None
    secret = answer.get("Secret") if isinstance(answer, dict) else None
    if not isinstance(username, str) or not isinstance(secret, str) or not secret:
        return None
    if username == "<token>":
        _logger.warning("identity tokens from docker-credential-%s are not supported", helper)
        return None
    return Credentials(username, secret)


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
