"""The watch daemon's parts: the state file, the metrics text, the event document, the
database view (over a database built by the real importer)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from kubegate.errors import KubegateError
from kubegate.publish import DatabaseView
from kubegate.publish.notify import flux_event
from kubegate.publish.state import Record, WatchState, state_path
from kubegate.publish.watch import BUCKETS, Metrics
from kubegate.vulndb import import_paths


def test_state_remembers_verdicts_and_the_approved_revision(tmp_path: Path) -> None:
    path = state_path(tmp_path, "file:///fleet.git", "main", "oci://r/x:approved")
    assert path != state_path(tmp_path, "file:///fleet.git", "dev", "oci://r/x:approved")
    with WatchState(path) as state:
        assert state.approved is None and not state.judged("c1", retry_unproven=600)
        state.record(
            Record("c1", "main@sha1:c1", "PASS", "sha256:d1", {"HIGH": 0}),
            approved=True,
            db_fingerprint="f1",
        )
        state.record(Record("c2", "main@sha1:c2", "UNPROVEN", None, {}), approved=False,
                     db_fingerprint=None)  # fmt: skip
    with WatchState(path) as state:  # a restart
        assert state.judged("c1", retry_unproven=600)
        approved = state.approved
        assert approved is not None and (approved.commit, approved.digest) == ("c1", "sha256:d1")
        assert state.fingerprint == "f1"
        # UNPROVEN counts as judged only until the retry delay has passed.
        assert state.judged("c2", retry_unproven=600)
        assert not state.judged("c2", retry_unproven=0)
        # A re-judgement never makes a revision approved nor counts as a head verdict.
        state.record(
            Record("c3", "main@sha1:c3", "BLOCKED", None, {}, kind="rejudge"),
            approved=True,
            db_fingerprint="f2",
        )
        assert not state.judged("c3", retry_unproven=600)
        assert state.approved == approved and state.fingerprint == "f2"


def test_metrics_text_format() -> None:
    metrics = Metrics()
    metrics.scans["PASS"] = 2
    metrics.observe(0.5)
    metrics.observe(3.0)
    metrics.last_findings = {"CRITICAL": 1}
    metrics.approved = ('main@sha1:"x"\\', "sha256:d")
    text = metrics.render(None, 3)
    lines = text.splitlines()
    assert 'kubegate_watch_scans_total{verdict="PASS"} 2' in lines
    assert 'kubegate_watch_scans_total{verdict="BLOCKED"} 0' in lines
    buckets = [ln for ln in lines if ln.startswith("kubegate_watch_scan_duration_seconds_bucket")]
    counts = [int(ln.rsplit(" ", 1)[1]) for ln in buckets]
    assert len(buckets) == len(BUCKETS) + 1 and counts == sorted(counts) and counts[-1] == 2
    assert counts[0] == 1  # 0.5 s <= 1 s
    assert "kubegate_watch_scan_duration_seconds_sum 3.500000" in lines
    assert 'kubegate_watch_last_findings{severity="CRITICAL"} 1' in lines
    assert "kubegate_watch_db_age_seconds NaN" in lines
    assert (
        'kubegate_watch_approved_info{revision="main@sha1:\\"x\\"\\\\",digest="sha256:d"} 1'
        in lines
    )
    assert "kubegate_watch_notifications_failed_total 3" in lines
    # Every sample has its HELP and TYPE (Prometheus text format 0.0.4).
    names = {ln.split("{")[0].split(" ")[0] for ln in lines if not ln.startswith("#")}
    for name in names:
        family = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        assert f"# TYPE {family} " in text, name


def test_event_is_a_flux_event() -> None:
    event = flux_event(
        name="fleet",
        namespace="flux-system",
        severity="error",
        reason="RevisionBlocked",
        message="BLOCKED: ...",
        metadata={"revision": "main@sha1:abc"},
    )
    assert set(event) == {
        "involvedObject", "severity", "timestamp", "message", "reason", "metadata",
        "reportingController", "reportingInstance",
    }  # fmt: skip
    assert event["involvedObject"] == {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "name": "fleet",
        "namespace": "flux-system",
    }
    assert event["metadata"] == {"source.toolkit.fluxcd.io/revision": "main@sha1:abc"}
    dt.datetime.strptime(event["timestamp"], "%Y-%m-%dT%H:%M:%SZ")


def test_database_view_reads_the_database_again_only_when_its_file_changes(
    tmp_path: Path, osv_db_path: Path
) -> None:
    db = tmp_path / "osv.sqlite3"
    view = DatabaseView(db)
    assert view.summary() is None  # no file yet
    shutil.copyfile(osv_db_path, db)
    first = view.summary()
    assert first is not None and first.imports and first.updated is not None
    assert view.summary() is first  # unchanged file: not read again
    extra = tmp_path / "extra"
    extra.mkdir()
    record = {
        "id": "CVE-2099-9001",
        "modified": "2026-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "somepkg"}, "versions": ["1.0"]}],
    }
    (extra / "CVE-2099-9001.json").write_text(json.dumps(record))
    import_paths(db, [extra])
    second = view.summary()
    assert second is not None and second.fingerprint != first.fingerprint
    db.write_bytes(b"not a database, same view")
    for _ in range(2):  # the error is cached too, and raised each time
        with pytest.raises(KubegateError):
            view.summary()
