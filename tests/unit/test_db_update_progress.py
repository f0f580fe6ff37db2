"""``db update`` progress as shown on a terminal (rich) and off one (log lines)."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console
from rich.progress import Progress

from kubegate.cli.dbupdate import PlainProgress, RichProgress, describe
from kubegate.errors import VulnDBError
from kubegate.vulndb.importer import ImportStats
from kubegate.vulndb.nvdimport import NvdImportStats, TrackerImportStats
from kubegate.vulndb.update import EcosystemResult


def test_rich_progress_announces_sizes_and_drops_bars() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with Progress(console=console, transient=True) as bars:
        progress = RichProgress(bars)
        progress.planned([("Debian", 3 << 20), ("Red Hat", None)])
        progress.started("Debian", "bytes", 3 << 20)
        progress.advanced("Debian", 1 << 20)
        assert bars.tasks[0].completed == 1 << 20
        progress.started("Debian", "import", 10)
        assert [t.description for t in bars.tasks] == ["Debian importing"]
        assert bars.tasks[0].total is None  # pulsing: the import reports no steps
        progress.finished(EcosystemResult("Debian", "full", ImportStats(added=10)))
        assert bars.tasks == []
    assert "full download of 2 feed(s), 3.0 MiB: Debian 3.0 MiB, Red Hat size unknown" in (
        out.getvalue()
    )


def test_plain_progress_lines(caplog: pytest.LogCaptureFixture) -> None:
    progress = PlainProgress()
    with caplog.at_level(logging.INFO, logger="kubegate"):
        progress.planned([("Alpine", 2048)])
        progress.started("Alpine", "bytes", 2048)
        progress.started("Alpine", "records", 7)
        progress.finished(EcosystemResult("Alpine", "incremental", ImportStats(added=7), 900))
        progress.finished(EcosystemResult("Go", "failed", error=VulnDBError("down", where="x")))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "full download of 1 feed(s), 2.0 KiB: Alpine 2.0 KiB",
        "Alpine: downloading all.zip (2.0 KiB)",
        "Alpine: fetching 7 changed record(s)",
        "Alpine: incremental: 7 added, 0 replaced, 0 withdrawn, 0 invalid (skipped) "
        "(0.9 KiB fetched)",
    ]
    failed = EcosystemResult("Go", "failed", error=VulnDBError("down", where="x"))
    assert describe(failed) == "Go: update failed: x: down"


def test_rich_progress_for_nvd_feed_files() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with Progress(console=console, transient=True) as bars:
        progress = RichProgress(bars)
        progress.started("NVD 2024", "file", None)
        progress.advanced("NVD 2024", 4096)
        assert [t.description for t in bars.tasks] == ["NVD 2024 download"]
        progress.finished(EcosystemResult("NVD 2024", "downloaded"))  # a download's end
        progress.started("NVD", "import", None)
        progress.finished(EcosystemResult("NVD", "full", NvdImportStats(added=3), note="x"))
        assert bars.tasks == []


def test_describe_severity_sources() -> None:
    nvd = EcosystemResult(
        "NVD", "full", NvdImportStats(added=3, unchanged=2), 2 << 20, note="2 feed(s) fetched"
    )
    assert describe(nvd) == (
        "NVD: full: 3 added, 0 replaced, 2 unchanged, 0 invalid (skipped); 2 feed(s) fetched "
        "(2.0 MiB fetched)"
    )
    tracker = EcosystemResult("Debian tracker", "full", TrackerImportStats(4, 9), optional=True)
    assert describe(tracker) == "Debian tracker: full: 9 CVE entries of 4 packages"
