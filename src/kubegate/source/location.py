"""Classify what the user typed as a source location and print it without credentials.

A location is a local path, a URL (``file://``, ``http(s)://``, ``ssh://``, ``git://``) or an
scp-like git address (``git@host:path``). Only those forms reach ``git``: remote helpers such as
``ext::`` run commands and are refused. Every location or URL shown to a user goes through
:func:`redact_url` first. Called by :func:`kubegate.source.open_source`, the git and artifact
fetchers.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from kubegate.errors import UsageError, redact_urls

#: URL schemes git may use for a revision (anything else, e.g. ``ext::``, is refused).
GIT_SCHEMES = frozenset({"file", "http", "https", "ssh", "git", "git+ssh", "ssh+git"})

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# git's scp-like syntax: [user@]host:path, with no slash before the first colon.
_SCP_RE = re.compile(r"^(?:[A-Za-z0-9._~-]+@)?[A-Za-z0-9._-]+:(?!//)[^\s]*$")


def is_url(location: str) -> bool:
    """True for ``scheme://...`` locations."""
    return bool(_URL_RE.match(location))


def is_scp_like(location: str) -> bool:
    """True for git's ``[user@]host:path`` form (checked after "is it a local path")."""
    return bool(_SCP_RE.match(location)) and "::" not in location


#: ``text`` with the userinfo and query of every URL in it removed (free text too).
redact_url = redact_urls


def check_git_url(location: str) -> str:
    """Return the scheme of a git URL, or raise :class:`UsageError` for an unsupported one."""
    scheme = urlsplit(location).scheme.lower()
    if scheme not in GIT_SCHEMES:
        raise UsageError(
            f"unsupported git URL scheme {scheme!r} (use file, https, http, ssh or git)",
            where=redact_url(location),
        )
    return scheme


def url_without_credentials(url: str) -> str:
    """``url`` with userinfo, query and fragment dropped (for labels and logs)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return redact_url(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
