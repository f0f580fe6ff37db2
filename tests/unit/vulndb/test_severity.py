"""Vendor severities and CVSS scoring (real vectors scored by the cvss library)."""

from __future__ import annotations

import pytest

from kubegate.models import Severity
from kubegate.vulndb.severity import score_vector, source_of, stated_severity


@pytest.mark.parametrize(
    ("kind", "vector", "score", "severity"),
    [
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, Severity.CRITICAL),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, Severity.HIGH),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9, Severity.MEDIUM),
        ("CVSS_V2", "AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0, Severity.HIGH),
        (
            "CVSS_V4",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            9.3,
            Severity.CRITICAL,
        ),
    ],
)
def test_vectors(kind: str, vector: str, score: float, severity: Severity) -> None:
    scored = score_vector(kind, vector)
    assert scored is not None
    assert (scored[0].score, scored[1]) == (score, severity)


def test_bad_vector_is_none() -> None:
    assert score_vector("CVSS_V3", "CVSS:3.1/AV:X") is None


def test_debian_urgency_in_ecosystem_specific() -> None:
    record = {
        "id": "DEBIAN-CVE-2099-1",
        "affected": [{"ecosystem_specific": {"urgency": "unimportant"}}],
    }
    stated = stated_severity(record)
    assert stated is not None and (stated.severity, stated.source) == (Severity.LOW, "debian")


def test_not_yet_assigned_states_nothing() -> None:
    assert (
        stated_severity(
            {"id": "DEBIAN-CVE-1", "database_specific": {"urgency": "not yet assigned"}}
        )
        is None
    )
    assert (
        stated_severity(
            {"id": "UBUNTU-CVE-1", "severity": [{"type": "Ubuntu", "score": "untriaged"}]}
        )
        is None
    )


def test_ghsa_moderate_is_medium() -> None:
    stated = stated_severity({"id": "GHSA-a", "database_specific": {"severity": "MODERATE"}})
    assert stated is not None and (stated.severity, stated.source) == (Severity.MEDIUM, "ghsa")


def test_sources() -> None:
    assert [source_of(i) for i in ("DSA-1-1", "USN-1-1", "RHSA-2022:1", "CVE-1", "XYZ-1")] == [
        "debian",
        "ubuntu",
        "redhat",
        "osv-cve",
        "xyz",
    ]


def test_free_form_specific_fields_of_odd_shape_are_ignored() -> None:
    record = {
        "id": "DEBIAN-CVE-2099-1",
        "database_specific": ["not", "an", "object"],
        "affected": [{"package": "x", "ecosystem_specific": "high"}],
    }
    assert stated_severity(record, ("Debian:12", "x")) is None
