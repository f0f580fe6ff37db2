"""Transport policy: which scheme a registry host is spoken to with, and where a URL may go.

Pure decisions used by :mod:`kubegate.registry.client`: loopback registries (127.0.0.0/8, ::1,
``localhost``) and hosts listed as insecure may fall back from HTTPS to plain HTTP (as Docker
does); Docker Hub's canonical name maps to its API host; credentials are attached only to
requests whose origin is the registry's own (never to a redirect target such as blob storage).
"""

from __future__ import annotations

import email.utils
import ipaddress
import time

import httpx

from kubegate.images.reference import DOCKER_HUB

#: Docker Hub's references say ``docker.io`` but its API lives elsewhere.
DOCKER_HUB_API = "registry-1.docker.io"


def api_host(registry: str) -> str:
    """The host[:port] to send API requests for ``registry`` to."""
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


def hostname(host: str) -> str:
    """``host[:port]`` or ``[v6]:port`` without port and brackets, lower case."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0].lower()
    if host.count(":") > 1:
        return host.lower()
    return host.split(":", 1)[0].lower()


def is_loopback(host: str) -> bool:
    """Whether ``host[:port]`` names this machine (``localhost``, 127.0.0.0/8, ::1)."""
    name = hostname(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def plain_http_allowed(host: str, insecure: frozenset[str]) -> bool:
    """Whether a registry may be spoken to over plain HTTP (after HTTPS failed)."""
    return is_loopback(host) or host.lower() in insecure or hostname(host) in insecure


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    """Same scheme, host and port: only then do credentials travel with a request."""
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def redirect_allowed(source: httpx.URL, target: httpx.URL, insecure: frozenset[str]) -> bool:
    """Refuse redirects to non-HTTP schemes and HTTPS -> HTTP downgrades to untrusted hosts."""
    if target.scheme not in ("http", "https"):
        return False
    if source.scheme == "https" and target.scheme == "http":
        netloc = target.netloc.decode("ascii", "replace")
        return plain_http_allowed(netloc, insecure)
    return True


def retry_after(value: str | None, default: float, ceiling: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP date), bounded."""
    wait = default
    if value:
        text = value.strip()
        if text.isdigit():
            wait = float(text)
        else:
            try:
                when = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                wait = when.timestamp() - time.time()
    return max(0.0, min(wait, ceiling))
