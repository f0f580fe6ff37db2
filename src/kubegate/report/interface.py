"""What every findings-report writer receives and the one interface writers implement.

``kubegate image`` builds an :class:`ImageInfo` and the
policy's judged findings and calls :func:`kubegate.report.render_image_report`; this module
imports nothing from ``cli`` (report writers never see CLI options).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kubegate.decide.policy import JudgedFinding


class OutputFormat(enum.StrEnum):
    """Formats of ``kubegate image --format``; each maps to exactly one writer."""

    TABLE = "table"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    """One platform of an image index that was scanned, by its own manifest digest."""

    platform: str
    digest: str


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """The scanned image as the report names it: always by digest (DESIGN.md invariant 2)."""

    reference: str
    digest: str
    #: ``"debian 11"``: the os-release ID and VERSION_ID, or None when unknown.
    os: str | None = None
    platforms: tuple[PlatformInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Presentation knobs that are not policy: the terminal width (None: never truncate)."""

    width: int | None = None


class ReportWriter(Protocol):
    """One output format."""

    format: OutputFormat

    def render(
        self, image: ImageInfo, judged: Sequence[JudgedFinding], options: RenderOptions
    ) -> str:
        """The whole report as text (ending with a newline)."""
        ...


class GateFormat(enum.StrEnum):
    """Formats of ``kubegate scan --format`` (repeatable, each with an optional ``--output``)."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"
    MARKDOWN = "markdown"
