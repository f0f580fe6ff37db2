"""Parse and normalise image references with the Docker reference grammar.

Follows ``distribution/reference`` (``reference.go``, ``normalize.go``): a first path component
is a registry host when it contains ``.`` or ``:`` or is ``localhost``; Docker Hub names gain
``docker.io`` and, for single components, ``library/``; a reference with neither tag nor digest
means ``:latest``. Called by ``kubegate.images`` (references found in manifests) and
``kubegate.registry`` (references given on the command line).
"""

from __future__ import annotations

import re

from kubegate.display import quoted
from kubegate.errors import ImageReferenceError
from kubegate.models import Digest, ImageRef

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_MAX_NAME = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
# ASCII only: the grammar's ``\w`` is ``[a-zA-Z0-9_]``; Python's would admit any letter.
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})")


def _shown(text: str) -> str:
    return quoted(text, _MAX_NAME)


def parse_reference(text: str) -> ImageRef:
    """Parse ``text`` into a normalised :class:`ImageRef`; raise ImageReferenceError if invalid."""
    original = text
    if not text or text != text.strip():
        raise ImageReferenceError(
            "empty reference or surrounding whitespace", where=_shown(original)
        )
    if "${" in text:
        raise ImageReferenceError(
            "reference still holds an unsubstituted variable", where=_shown(original)
        )

    digest: Digest | None = None
    if "@" in text:
        text, _, digest_text = text.partition("@")
        if not _DIGEST.fullmatch(digest_text):
            raise ImageReferenceError(
                f"invalid digest {_shown(digest_text)} (expected sha256:<64 hex>)",
                where=_shown(original),
            )
        digest = Digest(digest_text)

    tag: str | None = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ImageReferenceError(f"invalid tag {_shown(tag)}", where=_shown(original))

    registry, path = _split_domain(text, original)
    if len(registry) + 1 + len(path) > _MAX_NAME:
        raise ImageReferenceError(
            "repository name longer than 255 characters", where=_shown(original)
        )
    for component in path.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            raise ImageReferenceError(
                f"invalid repository path component {_shown(component)} "
                "(lowercase letters, digits, separators)",
                where=_shown(original),
            )
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(registry=registry, repository=path, tag=tag, digest=digest)


def _split_domain(name: str, original: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN.fullmatch(first):
            raise ImageReferenceError(
                f"invalid registry host {_shown(first)}", where=_shown(original)
            )
        registry = DOCKER_HUB if first.lower() in _HUB_ALIASES else first
        path = rest
    else:
        registry, path = DOCKER_HUB, name
    if not path:
        raise ImageReferenceError("missing repository name", where=_shown(original))
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return registry, path


def familiar(ref: ImageRef) -> str:
    """The short form people write (``nginx:1.21``) for display only."""
    text = str(ref)
    prefix = f"{DOCKER_HUB}/library/"
    if text.startswith(prefix) and ref.repository.count("/") == 1:
        return text[len(prefix) :]
    if text.startswith(f"{DOCKER_HUB}/"):
        return text[len(DOCKER_HUB) + 1 :]
    return text
