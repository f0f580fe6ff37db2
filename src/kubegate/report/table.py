"""``kubegate image --format table``: one row per finding, for people.

Columns: package, vulnerability, severity, the source that decided it (``nvd``, ``debian``,
``secondary:CISA-ADP``, ... docs/image.md), status (fixed/unfixed), installed, fixed, title.
Off a terminal (``RenderOptions.width`` None) nothing is ever truncated, so CI logs keep every
id and version; on a terminal only the title column is shortened to fit the width.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubegate.decide.policy import JudgedFinding
from kubegate.display import visible
from kubegate.report.interface import ImageInfo, OutputFormat, RenderOptions
from kubegate.report.json_report import summary

HEADERS = (
    "PACKAGE",
    "VULNERABILITY",
    "SEVERITY",
    "SOURCE",
    "STATUS",
    "INSTALLED",
    "FIXED",
    "TITLE",
)
_GAP = "  "
_MIN_TITLE = 10


def finding_row(item: JudgedFinding) -> tuple[str, ...]:
    """The table row of one judged finding (columns of :data:`HEADERS`)."""
    finding = item.finding
    severity = finding.severity.name + (" (blocks)" if item.blocking else "")
    # Package names and versions come from the image: escaped before widths are measured.
    return tuple(
        visible(cell)
        for cell in (
            finding.package.name,
            finding.id,
            severity,
            finding.severity_source,
            "fixed" if finding.fixable else "unfixed",
            finding.package.version,
            ", ".join(finding.fixed_versions),
            " ".join((finding.title or "").split()),
        )
    )


def aligned(
    headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], width: int | None
) -> list[str]:
    """Left-aligned columns; with a terminal ``width`` only the last column is shortened."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    last_width: int | None = None
    if width is not None:
        used = sum(widths[:-1]) + len(_GAP) * (len(headers) - 1)
        last_width = max(_MIN_TITLE, width - used)
    lines = []
    for row in [headers, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        last = row[-1]
        if last_width is not None and len(last) > last_width:
            last = last[: last_width - 1] + "…"
        lines.append(_GAP.join([*cells, last]).rstrip())
    return lines


class TableWriter:
    """Aligned plain-text table with a header naming the image by digest and a summary."""

    format = OutputFormat.TABLE

    def render(
        self, image: ImageInfo, judged: Sequence[JudgedFinding], options: RenderOptions
    ) -> str:
        """The table text."""
        lines = [f"{image.reference}@{image.digest}" + (f" ({image.os})" if image.os else "")]
        rows = [finding_row(item) for item in judged]
        if rows:
            lines.extend(aligned(HEADERS, rows, options.width))
        else:
            lines.append("no vulnerabilities found")
        counts = summary(judged)
        blocking = sum(1 for item in judged if item.blocking)
        lines.append(
            "Total: "
            + ", ".join(f"{name} {count}" for name, count in counts.items())
            + f"; blocking: {blocking}"
            + (f"; {counts['UNKNOWN']} without any severity" if counts["UNKNOWN"] else "")
        )
        return "\n".join(visible(line) for line in lines) + "\n"
