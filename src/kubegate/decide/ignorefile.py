"""Exceptions a team grants on purpose: the ``.kubegateignore.yaml`` file.

Read from ``--ignorefile``, the configuration's ``policy.ignorefile``, the user config directory or
the ``--config-ref`` checkout (never from inside the revision being judged: a commit must not be
able to exempt itself; ``kubegate.trust`` enforces it). Two kinds of entries, both with a required
expiry and reason:

- ``vulnerabilities``: suppress a flaw, optionally scoped to image globs, packages (names or
  purls) and workloads (``namespace/Kind/name`` globs). A CVE id covers that flaw; an advisory
  id (``DSA-...``, ``GHSA-...``) covers every flaw the advisory names.
- ``notSeen``: accept, for a while, a workload kubegate cannot look inside (a HelmRelease), or
  (kind ``Image``, name a glob over the reference) an image whose inventory proves nothing.

An expired or malformed entry suppresses nothing and is reported (:attr:`IgnoreFile.problems`,
:meth:`IgnoreFile.expired`). Called by ``kubegate.scan`` when judging findings and not-seen items.
Trivy's ignore files (``kubegate.decide.trivyignore``) map onto the same entries; only they can
give a vulnerability entry without expiry (``expires`` None): it applies without end and every
report lists it as a permanent exception (:meth:`IgnoreFile.permanent`).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubegate.errors import ConfigError
from kubegate.models import Finding, ImageRef, ImageUse, NotSeen
from kubegate.textfile import parse_yaml, read_text

DEFAULT_NAME = ".kubegateignore.yaml"
_MAX_BYTES = 4 * 1024 * 1024
# CVE-2024-1234, GHSA-xxxx-xxxx-xxxx, DSA-5678-1, RHSA-2024:1234, openSUSE-SU-2024:0001-1,
# GO-2024-0001, PYSEC-2024-1: letters and digits joined by - _ . : (no glob characters).
_ID_RE = re.compile(r"^[A-Za-z0-9]+(?:[-_.:][A-Za-z0-9]+)*$")


@dataclass(frozen=True, slots=True)
class VulnerabilityException:
    """One ``vulnerabilities[]`` entry."""

    id: str
    #: None: permanent (only Trivy's formats allow it; reports list such entries).
    expires: dt.date | None
    reason: str
    images: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    workloads: tuple[str, ...] = ()
    #: Globs over the path of the file the package was read from (Trivy's ``paths``).
    paths: tuple[str, ...] = ()
    #: ``file:entry-number`` for reports.
    where: str = ""

    def active(self, today: dt.date) -> bool:
        """Valid through its expiry date (inclusive), or always when permanent."""
        return self.expires is None or today <= self.expires

    def covers(self, finding: Finding, use: ImageUse | None, image: ImageRef | None) -> bool:
        """Whether this entry's id and scope cover ``finding`` as used by ``use``."""
        wanted = self.id.upper()
        ids = {finding.id.upper(), *(i.upper() for i in finding.record_ids)}
        ids.update(a.upper() for a in finding.aliases)
        if wanted not in ids:
            return False
        if self.images and not _image_matches(self.images, image):
            return False
        if self.packages and not _package_matches(self.packages, finding):
            return False
        if self.paths and not _path_matches(self.paths, finding):
            return False
        return not self.workloads or _workload_matches(self.workloads, use)


@dataclass(frozen=True, slots=True)
class NotSeenException:
    """One ``notSeen[]`` entry."""

    kind: str
    name: str
    expires: dt.date
    reason: str
    namespace: str | None = None
    where: str = ""

    def active(self, today: dt.date) -> bool:
        """Valid through its expiry date (inclusive)."""
        return today <= self.expires

    def covers(self, item: NotSeen) -> bool:
        """Same kind and name (globs allowed), and namespace when the entry gives one."""
        if item.kind != self.kind or not fnmatch.fnmatchcase(item.name, self.name):
            return False
        return self.namespace is None or fnmatch.fnmatchcase(item.namespace or "", self.namespace)


@dataclass(frozen=True, slots=True)
class IgnoreFile:
    """Every valid entry, plus a message per malformed one."""

    path: str | None = None
    vulnerabilities: tuple[VulnerabilityException, ...] = ()
    not_seen: tuple[NotSeenException, ...] = ()
    problems: tuple[str, ...] = ()

    def expired(self, today: dt.date) -> tuple[VulnerabilityException | NotSeenException, ...]:
        """Entries past their expiry: they suppress nothing and are reported."""
        entries: Sequence[VulnerabilityException | NotSeenException] = (
            *self.vulnerabilities,
            *self.not_seen,
        )
        return tuple(e for e in entries if not e.active(today))

    def permanent(self) -> tuple[VulnerabilityException, ...]:
        """Entries without expiry: every report lists them."""
        return tuple(e for e in self.vulnerabilities if e.expires is None)

    def vulnerability_exception(
        self, finding: Finding, use: ImageUse | None, image: ImageRef | None, today: dt.date
    ) -> VulnerabilityException | None:
        """The first active entry covering ``finding`` in this use, if any."""
        for entry in self.vulnerabilities:
            if entry.active(today) and entry.covers(finding, use, image):
                return entry
        return None

    def not_seen_exception(self, item: NotSeen, today: dt.date) -> NotSeenException | None:
        """The first active entry accepting ``item``, if any."""
        for entry in self.not_seen:
            if entry.active(today) and entry.covers(item):
                return entry
        return None


def load_ignore_file(path: Path, shown: Path | None = None) -> IgnoreFile:
    """Parse ``path``; an unreadable file or a non-mapping document is a ConfigError (exit 3).

    Malformed entries do not fail the load: they are kept as problems and suppress nothing.
    ``shown`` names the file in messages and reports when ``path`` is a private copy.
    """
    text = read_text(path, _MAX_BYTES, "ignore file")
    path = shown or path
    document = parse_yaml(text, str(path))
    if document is None:
        return IgnoreFile(path=str(path))
    if not isinstance(document, Mapping):
        raise ConfigError("expected a mapping with vulnerabilities/notSeen", where=str(path))
    unknown = set(document) - {"vulnerabilities", "notSeen"}
    problems: list[str] = [f"{path}: unknown key {key!r} ignored" for key in sorted(unknown)]
    vulnerabilities: list[VulnerabilityException] = []
    not_seen: list[NotSeenException] = []
    for index, raw in enumerate(_entries(document, "vulnerabilities", path, problems), 1):
        where = f"{path}: vulnerabilities[{index}]"
        try:
            vulnerabilities.append(_vulnerability(raw, where))
        except ValueError as exc:
            problems.append(f"{where}: {exc} (entry ignored: it suppresses nothing)")
    for index, raw in enumerate(_entries(document, "notSeen", path, problems), 1):
        where = f"{path}: notSeen[{index}]"
        try:
            not_seen.append(_not_seen(raw, where))
        except ValueError as exc:
            problems.append(f"{where}: {exc} (entry ignored: it suppresses nothing)")
    return IgnoreFile(str(path), tuple(vulnerabilities), tuple(not_seen), tuple(problems))


def _entries(document: Mapping[str, Any], key: str, path: Path, problems: list[str]) -> list[Any]:
    value = document.get(key) or []
    if not isinstance(value, list):
        problems.append(f"{path}: {key} must be a list (ignored)")
        return []
    return value


def _vulnerability(raw: Any, where: str) -> VulnerabilityException:
    entry = _mapping(raw, {"id", "images", "packages", "workloads", "expires", "reason"})
    return VulnerabilityException(
        id=vulnerability_id(entry.get("id")),
        expires=_date(entry.get("expires")),
        reason=_text(entry, "reason"),
        images=_globs(entry, "images"),
        packages=_globs(entry, "packages"),
        workloads=_globs(entry, "workloads"),
        where=where,
    )


def _not_seen(raw: Any, where: str) -> NotSeenException:
    entry = _mapping(raw, {"kind", "namespace", "name", "expires", "reason"})
    namespace = entry.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise ValueError("namespace must be a string")
    return NotSeenException(
        kind=_text(entry, "kind"),
        name=_text(entry, "name"),
        expires=_date(entry.get("expires")),
        reason=_text(entry, "reason"),
        namespace=namespace,
        where=where,
    )


def _mapping(raw: Any, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError("entry must be a mapping")
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    return raw


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} is required (a non-empty string)")
    return value.strip()


def _globs(entry: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = entry.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{key} must be a list of strings")
    return tuple(value)


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ValueError("expires is required (a date such as 2026-12-31)")


def _image_matches(globs: tuple[str, ...], image: ImageRef | None) -> bool:
    if image is None:
        return False
    forms = {str(image), image.name}
    if image.tag:
        forms.add(f"{image.name}:{image.tag}")
    return any(fnmatch.fnmatchcase(form, glob) for glob in globs for form in forms)


def _package_matches(patterns: tuple[str, ...], finding: Finding) -> bool:
    package = finding.package
    names = {package.name, package.source_name or package.name}
    for pattern in patterns:
        if pattern.startswith("pkg:"):
            # A purl without a version covers every version; qualifiers are never compared.
            purl = package.purl.split("?", 1)[0]
            bare = purl.split("@", 1)[0]
            wanted = pattern.split("?", 1)[0]
            if wanted in (purl, bare):
                return True
        elif any(fnmatch.fnmatchcase(name, pattern) for name in names):
            return True
    return False


def _path_matches(globs: tuple[str, ...], finding: Finding) -> bool:
    location = (finding.package.location or "").lstrip("/")
    if not location:
        return False
    return any(fnmatch.fnmatchcase(location, glob.lstrip("/")) for glob in globs)


def _workload_matches(globs: tuple[str, ...], use: ImageUse | None) -> bool:
    if use is None:
        return False
    workload = f"{use.namespace or ''}/{use.kind}/{use.name}"
    return any(fnmatch.fnmatchcase(workload, glob) for glob in globs)


def vulnerability_id(value: Any) -> str:
    """A vulnerability or advisory id as an exception names it (ValueError when it cannot be).

    Ids are compared exactly, so ``*`` or ``CVE-2024-*`` would match nothing; such an entry is
    refused (reported as malformed) rather than kept as one that looks like it suppresses all.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("id is required (a non-empty string)")
    text = value.strip()
    if not _ID_RE.match(text):
        raise ValueError(
            f"id {text!r} is not a vulnerability id (such as CVE-2024-1234 or GHSA-xxxx-xxxx-xxxx;"
            " patterns are not supported)"
        )
    return text
