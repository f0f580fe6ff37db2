"""Image uses from a chart in the report shapes: JSON ``helmRelease``/``chart``, the use line."""

from __future__ import annotations

import json

from kubegate.decide.gate import GateResult, Revision, Verdict
from kubegate.images.find import ImageScan
from kubegate.images.reference import parse_reference
from kubegate.models import ChartInfo, ImageUse, NotSeen, Origin, SourceInfo
from kubegate.report.gate import gate_json, gate_table
from kubegate.report.revision import use_object
from kubegate.report.summary import use_line

CHART = ChartInfo("app", "1.2.3", "sha256:" + "a" * 64, "https://charts.example/stable")


def _use(**kwargs: object) -> ImageUse:
    return ImageUse(
        parse_reference("registry.example/app:1"),
        Origin("apps/release.yaml", 12),
        "Deployment",
        "apps",
        "web",
        "app",
        kustomization="flux-system/apps",
        **kwargs,  # type: ignore[arg-type]
    )


def test_json_use_carries_release_and_chart() -> None:
    document = use_object(_use(helm_release="apps/web", chart=CHART))
    assert document["helmRelease"] == "apps/web"
    assert document["chart"] == {
        "name": "app",
        "version": "1.2.3",
        "digest": "sha256:" + "a" * 64,
        "source": "https://charts.example/stable",
    }
    plain = use_object(_use())
    assert (plain["helmRelease"], plain["chart"]) == (None, None)


def test_use_line_names_the_release() -> None:
    assert use_line(_use(helm_release="apps/web", chart=CHART)) == (
        "Deployment apps/web container app at apps/release.yaml:12 "
        "(HelmRelease apps/web, chart app@1.2.3) via flux-system/apps"
    )
    assert "HelmRelease" not in use_line(_use())


def test_scan_table_and_json_list_notes() -> None:
    note = NotSeen(
        "HelmRelease",
        "apps",
        "db",
        Origin("apps/db/release.yaml", 1),
        "chart postgres calls lookup, which returns nothing outside the cluster",
    )
    revision = Revision(SourceInfo("dir", "fleet"), ImageScan((), ()), (), (), (), (note,))
    result = GateResult(revision, (), (), Verdict.PASS, 0)
    table = gate_table(result)
    assert (
        "  HelmRelease apps/db: chart postgres calls lookup, which returns nothing outside the "
        "cluster (apps/db/release.yaml:1)"
    ) in table
    (item,) = json.loads(gate_json(result))["notes"]
    assert (item["kind"], item["name"], item["line"]) == ("HelmRelease", "db", 1)
