"""Report writers: judged findings (one per output format, listed in :data:`WRITERS`) and, in
``report.sbom``, SBOMs.

``kubegate image`` calls :func:`render_image_report`; writers never import the
CLI and never see its options (DESIGN.md "report/").
"""

from __future__ import annotations

from collections.abc import Sequence

from kubegate.decide.policy import JudgedFinding
from kubegate.report.interface import (
    ImageInfo,
    OutputFormat,
    PlatformInfo,
    RenderOptions,
    ReportWriter,
)
from kubegate.report.json_report import JSONWriter
from kubegate.report.table import TableWriter

#: Every writer, once each; a test checks that every OutputFormat has exactly one.
WRITERS: tuple[ReportWriter, ...] = (TableWriter(), JSONWriter())


def writer_for(fmt: OutputFormat | str) -> ReportWriter:
    """The writer of one format."""
    wanted = OutputFormat(fmt)
    for writer in WRITERS:
        if writer.format is wanted:
            return writer
    raise LookupError(f"no writer for {wanted}")  # unreachable while the registry test passes


def render_image_report(
    image_info: ImageInfo,
    findings_judged: Sequence[JudgedFinding],
    fmt: OutputFormat | str,
    *,
    width: int | None = None,
) -> str:
    """Render the findings of one image; ``width`` only on a TTY (None: never truncate)."""
    return writer_for(fmt).render(image_info, findings_judged, RenderOptions(width=width))


__all__ = [
    "WRITERS",
    "ImageInfo",
    "OutputFormat",
    "PlatformInfo",
    "RenderOptions",
    "ReportWriter",
    "render_image_report",
    "writer_for",
]
