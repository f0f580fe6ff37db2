"""The one error root of kubegate and its per-subsystem subclasses.

Every module raises a subclass of :class:`KubegateError` (third-party exceptions are wrapped at the
boundary where they occur, ``raise ... from exc``). Only ``kubegate.cli`` catches them, prints
:meth:`KubegateError.diagnostics` as one line and exits with :attr:`KubegateError.exit_code`.
"""

from __future__ import annotations

import re

#: Exit codes shared by every command (README "Exit codes").
EXIT_OK = 0
EXIT_BLOCKED = 1
EXIT_UNPROVEN = 2
EXIT_USAGE = 3


class KubegateError(Exception):
    """Root of every error kubegate reports to a user.

    ``where`` names the place the problem was found (a file:line, an image reference, a URL
    without credentials); ``diagnostics()`` joins it with the message into one line.
    """

    exit_code: int = EXIT_UNPROVEN

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def diagnostics(self) -> str:
        """One human line: what went wrong and where (URL credentials and queries redacted)."""
        if self.where:
            return redact_urls(f"{self.where}: {self.message}")
        return redact_urls(self.message)


# scheme://[userinfo@]rest[?query][#fragment] inside free text; a quote, space or angle bracket
# ends it. The userinfo may not contain "/" (an "@" later in the path is not userinfo).
_URL_IN_TEXT_RE = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?:[^/@\s'\"<>]*@)?"
    r"(?P<rest>[^\s?#'\"<>]*)(?P<query>[?#][^\s'\"<>]*)?"
)

#: What replaces a URL's query string and fragment.
REDACTED_QUERY = "?REDACTED"


def _redact_match(match: re.Match[str]) -> str:
    query = match.group("query") or ""
    # Punctuation that ends the sentence ("URL: message") is not part of the URL.
    tail = query[len(query.rstrip(".,:;)]}")) :] if query else ""
    redacted = REDACTED_QUERY + tail if query else ""
    return f"{match.group('scheme')}{match.group('rest')}{redacted}"


def redact_urls(text: str) -> str:
    """``text`` with the userinfo (``user:password@``) and the query string and fragment of every
    URL in it removed: tokens hide in both (presigned artifact URLs, ``https://user:token@``
    git remotes, a mirror given with ``?key=``). Every message, log line and report that may
    echo a user's or a server's URL goes through this (README "Exit codes", docs/security.md).
    """
    if "://" not in text:
        return text
    return _URL_IN_TEXT_RE.sub(_redact_match, text)


class UsageError(KubegateError):
    """The command line itself is wrong (exit 3)."""

    exit_code = EXIT_USAGE


class ConfigError(KubegateError):
    """A configuration or policy file is invalid (exit 3)."""

    exit_code = EXIT_USAGE


class SourceError(KubegateError):
    """The files of a revision could not be obtained (dir, git, Flux artifact)."""


class RenderError(KubegateError):
    """A revision could not be rendered into Kubernetes objects."""


class ImageReferenceError(KubegateError):
    """An image reference does not follow the Docker reference grammar."""


class RegistryError(KubegateError):
    """An OCI registry or local image layout could not deliver what was asked."""


class RegistryAuthError(RegistryError):
    """The registry refused our credentials (or demanded some we do not have)."""


class InventoryError(KubegateError):
    """An image's layers could not be inventoried (hostile, truncated or over limits)."""


class VulnDBError(KubegateError):
    """The advisory database is missing, unreadable, too old or could not be updated."""


class PolicyError(KubegateError):
    """A policy decision could not be made."""


class PublishError(KubegateError):
    """A passing revision could not be published (``--publish``), or ``watch`` failed."""
