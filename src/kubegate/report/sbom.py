"""SBOM writers for ``kubegate sbom``: CycloneDX JSON, SPDX 2.3 JSON, kubegate's JSON, a table.

Called by the CLI with an image reference and its :class:`~kubegate.inventory.ImageInventory`.
CycloneDX: one component per installed package (dpkg binary packages; the source package is a
property, ``kubegate:source:name``/``kubegate:source:version``, not an extra component) and the
image as ``metadata.component`` with its digest. ``cyclonedx`` is imported only when that format
is asked for: it costs start-up time every other command would pay; so is ``spdx_tools``. SPDX:
the image is the described package (purpose CONTAINER, its digest as checksum) that CONTAINS one
package per installed package, each with its purl; the document is validated by spdx-tools
before it is written, and ``created`` honours ``SOURCE_DATE_EPOCH`` (reproducible output). The
JSON form is documented in docs/sbom.md ("schemaVersion": 1).
"""

from __future__ import annotations

import datetime as dt
import enum
import io
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from kubegate import __version__
from kubegate.display import visible
from kubegate.models import ImageRef, Package

if TYPE_CHECKING:
    from kubegate.inventory import ImageInventory

#: Version of kubegate's own JSON SBOM (docs/sbom.md); bumped on incompatible changes only.
JSON_SCHEMA_VERSION: Final = 1


class SBOMFormat(enum.StrEnum):
    """Output formats of ``kubegate sbom``."""

    CYCLONEDX_JSON = "cyclonedx-json"
    SPDX_JSON = "spdx-json"
    JSON = "json"
    TABLE = "table"


@dataclass(frozen=True, slots=True)
class Subject:
    """The image an SBOM describes: its reference as reported and its name without tag/digest.

    Registry images use :meth:`of`; a local image (``oci:PATH``) is its own reference and name.
    """

    reference: str
    name: str

    @classmethod
    def of(cls, ref: ImageRef) -> Subject:
        """The subject for a registry reference."""
        return cls(str(ref), ref.name)

    def __str__(self) -> str:
        return self.reference


def _properties(package: Package) -> list[tuple[str, str]]:
    pairs = [
        ("kubegate:source:name", package.source_name),
        ("kubegate:source:version", package.source_version),
        ("kubegate:layer:digest", package.layer),
        ("kubegate:location", package.location),
        ("kubegate:extractor", package.extractor),
        ("kubegate:os-owned", "true" if package.os_owned else None),
        ("kubegate:third-party", "true" if package.third_party else None),
    ]
    return [(name, value) for name, value in pairs if value]


def _image_purl(image: Subject, inventory: ImageInventory) -> str:
    from packageurl import PackageURL

    # purl-spec "oci": the name is the last path segment, the version the manifest digest.
    text: str = PackageURL(
        type="oci",
        name=image.name.rsplit("/", 1)[-1].rsplit(":", 1)[-1].lower(),
        version=inventory.manifest_digest,
        qualifiers={"repository_url": image.name},
    ).to_string()
    return text


def cyclonedx_json(image: Subject, inventory: ImageInventory) -> str:
    """A CycloneDX 1.6 JSON document (validated against its schema by the tests)."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    image_properties = [Property(name="kubegate:image:reference", value=str(image))]
    if inventory.os is not None:
        image_properties.append(Property(name="kubegate:os:id", value=inventory.os.id))
        if inventory.os.version_id:
            image_properties.append(
                Property(name="kubegate:os:version", value=inventory.os.version_id)
            )
    root = Component(
        type=ComponentType.CONTAINER,
        name=image.name,
        version=inventory.manifest_digest,
        purl=PackageURL.from_string(_image_purl(image, inventory)),
        bom_ref=inventory.manifest_digest,
        properties=image_properties,
    )
    bom = Bom()
    bom.metadata.component = root
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="kubegate", version=__version__)
    )
    seen: dict[str, int] = {}
    components = []
    for package in inventory.packages:
        # Two databases may list the same purl (status and status.d): keep bom-refs unique.
        count = seen.get(package.purl, 0)
        seen[package.purl] = count + 1
        ref = package.purl if count == 0 else f"{package.purl}#{count}"
        component = Component(
            type=ComponentType.LIBRARY,
            name=package.name,
            version=package.version,
            purl=PackageURL.from_string(package.purl),
            bom_ref=ref,
            properties=[Property(name=n, value=v) for n, v in _properties(package)],
        )
        components.append(component)
        bom.components.add(component)
    bom.register_dependency(root, components)
    text: str = JsonV1Dot6(bom).output_as_string(indent=2)
    return text + "\n"


def _created() -> dt.datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC).replace(tzinfo=None)
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _spdx_id(kind: str, index: int, name: str) -> str:
    # SPDX ids allow letters, digits, "." and "-" only.
    return f"SPDXRef-{kind}-{index}-{re.sub(r'[^A-Za-z0-9.-]+', '-', name)}"


def spdx_json(image: Subject, inventory: ImageInventory) -> str:
    """An SPDX 2.3 JSON document, validated by spdx-tools before it is returned."""
    from spdx_tools.spdx.model.actor import Actor, ActorType
    from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
    from spdx_tools.spdx.model.document import CreationInfo, Document
    from spdx_tools.spdx.model.package import (
        ExternalPackageRef,
        ExternalPackageRefCategory,
        PackagePurpose,
    )
    from spdx_tools.spdx.model.package import Package as SPDXPackage
    from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
    from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    created = _created()
    digest = inventory.manifest_digest
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"{image}@{digest}@{created.isoformat()}")
    creation = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=f"{image.name}@{digest}",
        document_namespace=f"https://spdx.org/spdxdocs/kubegate/{namespace}",
        creators=[Actor(ActorType.TOOL, f"kubegate-{__version__}")],
        created=created,
    )
    algorithm, _, hex_value = digest.partition(":")
    root = SPDXPackage(
        spdx_id="SPDXRef-Image",
        name=image.name,
        download_location=SpdxNoAssertion(),
        version=digest,
        files_analyzed=False,
        checksums=[Checksum(ChecksumAlgorithm[algorithm.upper()], hex_value)],
        external_references=[
            ExternalPackageRef(
                ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", _image_purl(image, inventory)
            )
        ],
        primary_package_purpose=PackagePurpose.CONTAINER,
        comment=f"image reference {image}",
    )
    packages = [root]
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, "SPDXRef-Image")]
    for index, package in enumerate(inventory.packages, 1):
        source = None
        if package.source_name and (package.source_name, package.source_version) != (
            package.name,
            package.version,
        ):
            source = f"built from {package.source_name} {package.source_version or ''}".strip()
        spdx_id = _spdx_id("Package", index, package.name)
        packages.append(
            SPDXPackage(
                spdx_id=spdx_id,
                name=package.name,
                download_location=SpdxNoAssertion(),
                version=package.version,
                files_analyzed=False,
                source_info=source,
                external_references=[
                    ExternalPackageRef(
                        ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", package.purl
                    )
                ],
                primary_package_purpose=PackagePurpose.LIBRARY,
                comment="; ".join(f"{n}={v}" for n, v in _properties(package)) or None,
            )
        )
        relationships.append(Relationship("SPDXRef-Image", RelationshipType.CONTAINS, spdx_id))
    document = Document(creation, packages=packages, relationships=relationships)
    problems = validate_full_spdx_document(document)
    if problems:
        # A writer bug, not bad input: the inventory's values are what they are.
        raise ValueError(f"invalid SPDX document: {problems[0].validation_message}")
    stream = io.StringIO()
    write_document_to_stream(document, stream, validate=False)
    return stream.getvalue() + "\n"


def kubegate_json(image: Subject, inventory: ImageInventory) -> str:
    """kubegate's own SBOM (docs/sbom.md)."""
    os_info = inventory.os
    document: dict[str, Any] = {
        "schemaVersion": JSON_SCHEMA_VERSION,
        "image": {
            "reference": str(image),
            "name": image.name,
            "digest": inventory.manifest_digest,
            "layers": list(inventory.layers),
        },
        "os": None
        if os_info is None
        else {
            "id": os_info.id,
            "versionId": os_info.version_id,
            "prettyName": os_info.pretty_name,
            "idLike": list(os_info.id_like),
        },
        "packages": [
            {
                "name": p.name,
                "version": p.version,
                "type": p.type,
                "purl": p.purl,
                "arch": p.arch,
                "sourceName": p.source_name,
                "sourceVersion": p.source_version,
                "layer": p.layer,
                "location": p.location,
                "extractor": p.extractor,
                "fileCount": len(p.files),
                "osOwned": p.os_owned,
                "thirdParty": p.third_party,
            }
            for p in inventory.packages
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def table(image: Subject, inventory: ImageInventory) -> str:
    """A plain-text table for humans (no colour: it is also read in CI logs)."""
    os_text = "unknown OS"
    if inventory.os is not None:
        os_text = inventory.os.pretty_name or f"{inventory.os.id} {inventory.os.version_id or ''}"
    lines = [f"{image.name}@{inventory.manifest_digest} ({os_text.strip()})"]
    rows: list[tuple[str, ...]] = [("NAME", "VERSION", "SOURCE", "TYPE", "LAYER")]
    for p in inventory.packages:
        source = ""
        if p.source_name and (p.source_name, p.source_version) != (p.name, p.version):
            source = p.source_name
            if p.source_version and p.source_version != p.version:
                source += f" ({p.source_version})"
        layer = (p.layer or "").split(":", 1)[-1][:12]
        # Names and versions come from the image: escaped (kubegate.display) for the reader.
        rows.append(tuple(visible(cell) for cell in (p.name, p.version, source, p.type, layer)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.extend(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
    lines.append(f"{len(inventory.packages)} packages")
    return "\n".join(visible(line).rstrip() for line in lines) + "\n"


#: Every format's writer; a test checks the mapping covers :class:`SBOMFormat` exactly.
WRITERS: Final[dict[SBOMFormat, Callable[[Subject, ImageInventory], str]]] = {
    SBOMFormat.CYCLONEDX_JSON: cyclonedx_json,
    SBOMFormat.SPDX_JSON: spdx_json,
    SBOMFormat.JSON: kubegate_json,
    SBOMFormat.TABLE: table,
}


def render_sbom(image: Subject, inventory: ImageInventory, fmt: SBOMFormat) -> str:
    """The SBOM of ``inventory`` in ``fmt``."""
    return WRITERS[fmt](image, inventory)
