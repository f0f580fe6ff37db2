"""The severity precedence (docs/image.md "Severity"): table and property tests.

NVD entries are built as the NVD 2.0 feeds publish them: the metrics of CVE-2022-1292 and
CVE-2021-3711 are copied from their NVD records (``cvssMetricV31`` / ``cvssMetricV2`` with
``source``, ``type``, ``cvssData.vectorString``, ``baseScore``; stored copies in the
fkie-cad/nvd-json-data-feeds repository, examples/nvd/README.md lists them).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubegate.models import CVSS, Severity
from kubegate.vulndb.nvd import NvdCve, NvdMetric
from kubegate.vulndb.severity import (
    CVSS_VERSIONS,
    SeverityEvidence,
    cvss_severity,
    nvd_severity,
    pick_metric,
    resolve_severity,
    urgency_severity,
)

NVD = "nvd@nist.gov"
CISA_ADP = "134c704f-9b21-4f2e-91b3-4a467353bcc0"
OPENSSL_CNA = "openssl-security@openssl.org"
V31_98 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V31_73 = "CVSS:3.1/AV:L/AC:L/PR:L/UI:R/S:U/C:H/I:H/A:H"


def metric(
    version: str, score: float, *, source: str = NVD, primary: bool | None = None, vector: str = ""
) -> NvdMetric:
    severity = cvss_severity(score, 2 if version == "2.0" else 3)
    return NvdMetric(
        version=version,
        source=source,
        primary=(source == NVD) if primary is None else primary,
        vector=vector or f"{version}/{source}/{score}",
        score=score,
        severity=severity,
    )


def cve(*metrics: NvdMetric, status: str = "Analyzed") -> NvdCve:
    return NvdCve(
        id="CVE-2099-0001",
        status=status,
        last_modified="2099-01-01T00:00:00.000",
        description="A flaw.",
        metrics=metrics,
    )


# The real metrics of CVE-2022-1292 (NVD record, lastModified 2025-08-11T17:19:56.250).
CVE_2022_1292 = NvdCve(
    id="CVE-2022-1292",
    status="Analyzed",
    last_modified="2025-08-11T17:19:56.250",
    description="The c_rehash script does not properly sanitise shell metacharacters to "
    "prevent command injection.",
    metrics=(
        NvdMetric("3.1", NVD, True, V31_73, 7.3, Severity.HIGH),
        NvdMetric("3.1", CISA_ADP, False, V31_98, 9.8, Severity.CRITICAL),
        NvdMetric("2.0", NVD, True, "AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0, Severity.HIGH),
    ),
)


def test_nvd_primary_beats_cisa_adp_on_cve_2022_1292() -> None:
    stated = nvd_severity(CVE_2022_1292)
    assert stated is not None
    assert (stated.severity, stated.source, stated.cvss) == (
        Severity.HIGH,
        "nvd",
        CVSS(V31_73, 7.3),
    )


def test_secondary_only_without_primary_and_adp_named() -> None:
    adp_only = cve(metric("3.1", 9.8, source=CISA_ADP, vector=V31_98))
    stated = nvd_severity(adp_only)
    assert stated is not None
    assert (stated.severity, stated.source, stated.cvss) == (
        Severity.CRITICAL,
        "secondary:CISA-ADP",
        CVSS(V31_98, 9.8),
    )


def test_cna_before_adp_of_the_same_version_then_highest() -> None:
    entry = cve(
        metric("3.1", 9.8, source=CISA_ADP),
        metric("3.1", 5.3, source=OPENSSL_CNA),
        metric("3.1", 6.1, source="security@example.org"),
    )
    stated = nvd_severity(entry)
    assert stated is not None
    assert (stated.source, stated.severity) == ("secondary:security@example.org", Severity.MEDIUM)


def test_secondary_version_order_before_cna_preference() -> None:
    entry = cve(metric("3.1", 5.0, source=OPENSSL_CNA), metric("4.0", 8.7, source=CISA_ADP))
    stated = nvd_severity(entry)
    assert stated is not None and stated.source == "secondary:CISA-ADP"


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        (("2.0", "3.0", "3.1", "4.0"), "4.0"),
        (("2.0", "3.0", "3.1"), "3.1"),
        (("3.0", "2.0"), "3.0"),
        (("2.0",), "2.0"),
    ],
)
def test_version_order_table(versions: tuple[str, ...], expected: str) -> None:
    entry = cve(*(metric(v, 5.0 + i) for i, v in enumerate(versions)))
    chosen = pick_metric(entry.metrics, primary=True)
    assert chosen is not None and chosen.version == expected


def test_unrated_metric_is_skipped_and_nothing_is_none() -> None:
    assert nvd_severity(cve(metric("3.1", 0.0))) is None
    assert nvd_severity(cve()) is None
    entry = cve(metric("4.0", 0.0), metric("3.1", 7.5))
    stated = nvd_severity(entry)
    assert stated is not None and stated.cvss == CVSS("3.1/nvd@nist.gov/7.5", 7.5)


_SOURCES = st.sampled_from([NVD, CISA_ADP, OPENSSL_CNA, "cve@mitre.org"])
_METRICS = st.lists(
    st.builds(
        metric,
        st.sampled_from(CVSS_VERSIONS),
        st.floats(min_value=0.1, max_value=10.0).map(lambda x: round(x, 1)),
        source=_SOURCES,
    ),
    max_size=8,
)


@given(_METRICS)
def test_property_newest_version_and_primary_first(metrics: list[NvdMetric]) -> None:
    stated = nvd_severity(cve(*metrics))
    primaries = [m for m in metrics if m.primary]
    pool = primaries or metrics
    if not pool:
        assert stated is None
        return
    assert stated is not None
    # Secondary only when no Primary.
    assert (stated.source == "nvd") == bool(primaries)
    newest = min(CVSS_VERSIONS.index(m.version) for m in pool)
    chosen = [m for m in pool if CVSS(m.vector, m.score) == stated.cvss]
    assert chosen and all(CVSS_VERSIONS.index(m.version) == newest for m in chosen)
    assert stated.severity == chosen[0].severity


@given(_METRICS)
def test_property_feed_order_never_matters(metrics: list[NvdMetric]) -> None:
    assert nvd_severity(cve(*metrics)) == nvd_severity(cve(*reversed(metrics)))


@pytest.mark.parametrize(
    ("urgency", "expected"),
    [
        ("low", Severity.LOW),
        ("medium", Severity.MEDIUM),
        ("high", Severity.HIGH),
        ("unimportant", Severity.LOW),
        ("medium**", None),
        ("low*", None),
        ("not yet assigned", None),
        ("end-of-life", None),
        ("", None),
        (None, None),
    ],
)
def test_tracker_urgencies(urgency: str | None, expected: Severity | None) -> None:
    assert urgency_severity(urgency) is expected


# -- the whole precedence: each step, when present, beats every later one -------------------
DEBIAN_RATED = {"id": "DEBIAN-CVE-2099-0001", "database_specific": {"urgency": "low"}}
DSA_RATED = {"id": "DSA-9999-1", "affected": [{"ecosystem_specific": {"urgency": "high"}}]}
GHSA = {"id": "GHSA-xxxx-0000-0001", "database_specific": {"severity": "MODERATE"}}
OSV_CVE = {"id": "CVE-2099-0001", "severity": [{"type": "CVSS_V3", "score": V31_98}]}

_STEPS: dict[str, tuple[str, dict[str, Any], Severity]] = {
    # name: (expected source, evidence field, severity it gives)
    "vendor": ("debian", {"matched": [DSA_RATED]}, Severity.HIGH),
    "distro": ("debian", {"same_distro": [DEBIAN_RATED]}, Severity.LOW),
    "tracker": ("debian", {"tracker_urgency": "medium"}, Severity.MEDIUM),
    "ghsa": ("ghsa", {"ghsa": [GHSA]}, Severity.MEDIUM),
    "nvd": ("nvd", {"nvd": cve(metric("3.1", 7.3, vector=V31_73))}, Severity.HIGH),
    "secondary": (
        "secondary:CISA-ADP",
        {"nvd": cve(metric("3.1", 9.8, source=CISA_ADP))},
        Severity.CRITICAL,
    ),
    "osv-cve": ("osv-cve", {"osv_cve": OSV_CVE}, Severity.CRITICAL),
}
_ORDER = ["vendor", "distro", "tracker", "ghsa", "nvd", "secondary", "osv-cve"]


def _evidence(steps: list[str]) -> SeverityEvidence:
    fields: dict[str, Any] = {}
    for step in steps:
        for key, value in _STEPS[step][1].items():
            if key == "nvd" and "nvd" in fields:
                # One NVD entry holds both Primary and Secondary metrics.
                value = cve(*fields["nvd"].metrics, *value.metrics)
            elif key in {"matched", "same_distro", "ghsa"}:
                value = [*fields.get(key, []), *value]
            fields[key] = value
    return SeverityEvidence(**fields)


@pytest.mark.parametrize("step", _ORDER)
def test_each_step_alone_decides(step: str) -> None:
    decided = resolve_severity(_evidence([step]))
    assert (decided.source, decided.severity) == (_STEPS[step][0], _STEPS[step][2])


def test_nothing_is_unknown_from_none() -> None:
    decided = resolve_severity(SeverityEvidence())
    assert (decided.severity, decided.source, decided.cvss) == (Severity.UNKNOWN, "none", None)


@given(st.sets(st.sampled_from(_ORDER), min_size=1))
def test_property_the_first_present_step_decides(steps: set[str]) -> None:
    present = [s for s in _ORDER if s in steps]
    decided = resolve_severity(_evidence(present))
    first = present[0]
    if first in {"distro", "tracker"}:
        # One step: the distro's CVE record and the tracker's urgency; the worst of both.
        same = [s for s in present if s in {"distro", "tracker"}]
        assert decided.severity == max(_STEPS[s][2] for s in same)
        assert decided.source == "debian"
    else:
        assert (decided.source, decided.severity) == (_STEPS[first][0], _STEPS[first][2])


@pytest.mark.parametrize("urgency", ["medium**", "not yet assigned", "end-of-life"])
def test_tracker_non_ratings_fall_through_to_nvd(urgency: str) -> None:
    decided = resolve_severity(
        SeverityEvidence(tracker_urgency=urgency, nvd=cve(metric("3.1", 9.8, vector=V31_98)))
    )
    assert (decided.severity, decided.source, decided.cvss) == (
        Severity.CRITICAL,
        "nvd",
        CVSS(V31_98, 9.8),
    )


def test_starred_urgency_in_an_osv_record_states_nothing() -> None:
    record = {"id": "DEBIAN-CVE-2099-1", "database_specific": {"urgency": "medium**"}}
    decided = resolve_severity(SeverityEvidence(same_distro=[record]))
    assert decided.severity is Severity.UNKNOWN
