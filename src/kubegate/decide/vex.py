"""OpenVEX documents (``kubegate scan --vex FILE``): what a supplier says of its own images.

OpenVEX 0.2.0: a document holds ``statements[]``, each naming a ``vulnerability`` (``name``,
``@id``, ``aliases``), ``products[]`` (``@id`` with optional ``subcomponents[]``), a ``status``
and, for ``not_affected``, a ``justification`` label or an ``impact_statement``. A product id is
an image (``pkg:oci/NAME@DIGEST?repository_url=REGISTRY/REPO`` or an image reference such as
``ghcr.io/org/app@sha256:...``) or a package purl; subcomponents name packages inside the image.

Only ``not_affected`` and ``fixed`` suppress a finding; for one product and flaw the latest
statement wins (statement ``timestamp``, else its document's; ties go to the one read last), so
a later ``affected`` or ``under_investigation`` takes a suppression back. A malformed statement
suppresses nothing and is reported (:attr:`VexSet.problems`). Called by
``kubegate.decide.gate`` when judging findings; the CLI loads the files with :func:`load_vex`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from kubegate.errors import ConfigError, KubegateError
from kubegate.images.reference import parse_reference
from kubegate.models import Digest, Finding, ImageRef
from kubegate.textfile import read_text

_MAX_BYTES: Final = 16 * 1024 * 1024
STATUSES: Final = frozenset({"not_affected", "affected", "fixed", "under_investigation"})
#: Statuses that suppress a finding.
SUPPRESSING: Final = frozenset({"not_affected", "fixed"})
#: OpenVEX 0.2.0 "Status Justifications".
JUSTIFICATIONS: Final = frozenset(
    {
        "component_not_present",
        "vulnerable_code_not_present",
        "vulnerable_code_not_in_execute_path",
        "vulnerable_code_cannot_be_controlled_by_adversary",
        "inline_mitigations_already_exist",
    }
)
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class ImageSubject:
    """The image a finding was found in, as VEX products are matched against it."""

    ref: ImageRef
    #: Top-level manifest or index digest, and each platform's manifest digest.
    digests: tuple[Digest, ...] = ()


@dataclass(frozen=True, slots=True)
class VexProduct:
    """One ``products[]`` entry: an image or a package, optionally narrowed to subcomponents."""

    id: str
    subcomponents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VexStatement:
    """One well-formed statement."""

    vulnerability: str
    #: Every id the statement names for its flaw (name, ``@id``, aliases), upper-cased.
    ids: frozenset[str]
    products: tuple[VexProduct, ...]
    status: str
    justification: str | None
    impact_statement: str | None
    timestamp: dt.datetime
    #: ``file: statements[N]`` for reports.
    where: str
    #: Order of reading, to break timestamp ties.
    order: int = 0

    @property
    def reason(self) -> str:
        """How reports explain the suppression."""
        parts = [f"VEX {self.status}"]
        if self.justification:
            parts.append(self.justification)
        text = ": ".join(parts)
        return f"{text} -- {self.impact_statement}" if self.impact_statement else text

    def names(self, finding: Finding) -> bool:
        """Whether the statement speaks of ``finding``'s flaw."""
        found = {finding.id.upper(), *(i.upper() for i in finding.record_ids)}
        found.update(a.upper() for a in finding.aliases)
        return not self.ids.isdisjoint(found)

    def covers(self, finding: Finding, image: ImageSubject | None) -> bool:
        """Whether one of the products is ``finding``'s image or package."""
        return any(_product_matches(p, finding, image) for p in self.products)


@dataclass(frozen=True, slots=True)
class VexSet:
    """Every well-formed statement of every ``--vex`` file, plus a message per malformed one."""

    statements: tuple[VexStatement, ...] = ()
    problems: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def suppression(self, finding: Finding, image: ImageSubject | None) -> VexStatement | None:
        """The statement that suppresses ``finding``, if the latest one covering it does."""
        latest: VexStatement | None = None
        for statement in self.statements:
            if not statement.names(finding) or not statement.covers(finding, image):
                continue
            if latest is None or (statement.timestamp, statement.order) >= (
                latest.timestamp,
                latest.order,
            ):
                latest = statement
        return latest if latest is not None and latest.status in SUPPRESSING else None

    def merged(self, other: VexSet) -> VexSet:
        """Both sets (reading order kept)."""
        offset = len(self.statements)
        statements = tuple(
            VexStatement(
                s.vulnerability,
                s.ids,
                s.products,
                s.status,
                s.justification,
                s.impact_statement,
                s.timestamp,
                s.where,
                s.order + offset,
            )
            for s in other.statements
        )
        return VexSet(
            self.statements + statements, self.problems + other.problems, self.paths + other.paths
        )


def load_vex(paths: Sequence[Path]) -> VexSet:
    """Read every file; an unreadable file or a document without ``statements`` is a ConfigError."""
    result = VexSet()
    for path in paths:
        result = result.merged(_load_one(path))
    return result


def _load_one(path: Path) -> VexSet:
    where = str(path)
    text = read_text(path, _MAX_BYTES, "VEX document")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"not a JSON document: {exc}", where=where) from exc
    except RecursionError as exc:
        # A VEX document is a few levels deep; thousands of nested arrays are an attack on the
        # parser, not a statement.
        raise ConfigError("not a JSON document: nested too deeply", where=where) from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("statements"), list):
        raise ConfigError("not an OpenVEX document (no statements list)", where=where)
    try:
        default_time = _timestamp(document.get("timestamp"), "timestamp") or _EPOCH
    except ValueError as exc:
        raise ConfigError(str(exc), where=where) from exc
    statements: list[VexStatement] = []
    problems: list[str] = []
    for index, raw in enumerate(document["statements"], 1):
        place = f"{path}: statements[{index}]"
        try:
            statements.append(_statement(raw, place, default_time, len(statements)))
        except ValueError as exc:
            problems.append(f"{place}: {exc} (statement ignored: it suppresses nothing)")
    return VexSet(tuple(statements), tuple(problems), (where,))


def _statement(raw: Any, where: str, default_time: dt.datetime, order: int) -> VexStatement:
    if not isinstance(raw, Mapping):
        raise ValueError("statement must be an object")
    vulnerability = raw.get("vulnerability")
    if not isinstance(vulnerability, Mapping):
        raise ValueError("vulnerability must be an object with a name")
    name = vulnerability.get("name")
    at_id = vulnerability.get("@id")
    ids: set[str] = set()
    if _is_text(at_id):
        # An IRI such as https://nvd.nist.gov/vuln/detail/CVE-...: its last segment is the id.
        last = str(at_id).strip().rstrip("/").rsplit("/", 1)[-1]
        ids.update({str(at_id).strip().upper(), last.upper()})
        name = name if _is_text(name) else last
    if not _is_text(name):
        raise ValueError("vulnerability needs a name or an @id")
    name = str(name).strip()
    ids.add(name.upper())
    aliases = vulnerability.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ValueError("vulnerability.aliases must be a list of strings")
    ids.update(a.strip().upper() for a in aliases if a.strip())
    status = raw.get("status")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(sorted(STATUSES))}")
    justification = raw.get("justification")
    if justification is not None and justification not in JUSTIFICATIONS:
        raise ValueError(f"unknown justification {justification!r}")
    impact = raw.get("impact_statement")
    if impact is not None and (not isinstance(impact, str) or not impact.strip()):
        raise ValueError("impact_statement must be a non-empty string")
    if status == "not_affected" and justification is None and impact is None:
        raise ValueError("not_affected needs a justification or an impact_statement")
    return VexStatement(
        vulnerability=name,
        ids=frozenset(ids),
        products=_products(raw.get("products")),
        status=str(status),
        justification=justification,
        impact_statement=impact.strip() if isinstance(impact, str) else None,
        timestamp=_timestamp(raw.get("timestamp"), "statement timestamp") or default_time,
        where=where,
        order=order,
    )


def _products(value: Any) -> tuple[VexProduct, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("products must be a non-empty list")
    products: list[VexProduct] = []
    for item in value:
        if not isinstance(item, Mapping) or not _is_text(item.get("@id")):
            raise ValueError("each product needs an @id")
        subs = item.get("subcomponents") or []
        if not isinstance(subs, list) or not all(
            isinstance(s, Mapping) and _is_text(s.get("@id")) for s in subs
        ):
            raise ValueError("subcomponents must be a list of objects with an @id")
        product = VexProduct(str(item["@id"]).strip(), tuple(str(s["@id"]).strip() for s in subs))
        _check_product_id(product.id)
        for sub in product.subcomponents:
            _check_purl(sub, "subcomponent")
        products.append(product)
    return tuple(products)


def _check_purl(text: str, what: str) -> None:
    """A package URL naming one package: parsed, without glob characters (compared exactly)."""
    from packageurl import PackageURL

    try:
        parsed = PackageURL.from_string(text)
    except ValueError as exc:
        raise ValueError(f"{what} {text!r} is not a valid package URL") from exc
    if any(c in f"{parsed.namespace or ''}/{parsed.name}" for c in "*?[]"):
        # purl has no wildcards: pkg:deb/debian/* would match no package while reading as if it
        # covered all of them.
        raise ValueError(f"{what} {text!r}: package URLs have no wildcards")


def _check_product_id(text: str) -> None:
    if text.startswith("pkg:"):
        _check_purl(text, "product")
        return
    try:
        parse_reference(text)
    except KubegateError as exc:
        raise ValueError(f"product {text!r} is neither a purl nor an image reference") from exc


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _timestamp(value: Any, what: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise ValueError(f"{what} must be an RFC 3339 date-time")


def _product_matches(product: VexProduct, finding: Finding, image: ImageSubject | None) -> bool:
    if product.id.startswith("pkg:") and not product.id.startswith("pkg:oci/"):
        # A package as the product: that package in any image.
        return _purl_matches(product.id, finding.package.purl)
    if image is None or not _image_matches(product.id, image):
        return False
    return not product.subcomponents or any(
        _purl_matches(sub, finding.package.purl) for sub in product.subcomponents
    )


def _image_matches(product_id: str, image: ImageSubject) -> bool:
    if product_id.startswith("pkg:oci/"):
        return _oci_purl_matches(product_id, image)
    ref = parse_reference(product_id)
    if ref.name != image.ref.name:
        return False
    if ref.digest is not None:
        return ref.digest in image.digests
    # A tag written in the product names what runs under it; no tag: every version.
    return not _has_tag(product_id) or ref.tag == image.ref.tag


def _has_tag(text: str) -> bool:
    name = text.split("@", 1)[0]
    return ":" in name.rsplit("/", 1)[-1]


def _oci_purl_matches(purl: str, image: ImageSubject) -> bool:
    from packageurl import PackageURL

    try:
        parsed = PackageURL.from_string(purl)
    except ValueError:
        return False
    if parsed.version and parsed.version not in image.digests:
        return False
    qualifiers = parsed.qualifiers if isinstance(parsed.qualifiers, dict) else {}
    repository_url = qualifiers.get("repository_url")
    if repository_url:
        try:
            wanted = parse_reference(str(repository_url).strip("/")).name
        except KubegateError:
            return False
        return wanted == image.ref.name
    # purl-spec: without repository_url the name is the image's last path segment.
    return str(parsed.name).lower() == image.ref.repository.rsplit("/", 1)[-1].lower()


def _purl_matches(wanted: str, purl: str) -> bool:
    """Same type, namespace and name; same version when ``wanted`` gives one; no qualifiers."""
    from packageurl import PackageURL

    try:
        want, have = PackageURL.from_string(wanted), PackageURL.from_string(purl)
    except ValueError:
        return False
    if (want.type, want.namespace, want.name) != (have.type, have.namespace, have.name):
        return False
    return not want.version or want.version == have.version
