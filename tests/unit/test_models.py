"""Small behaviours of the shared data types in :mod:`kubegate.models`."""

from __future__ import annotations

from kubegate.models import Origin


def test_origin_where_names_file_and_line_when_known() -> None:
    assert Origin("apps/ks.yaml", 3).where == "apps/ks.yaml:3"
    assert Origin("apps/ks.yaml").where == "apps/ks.yaml"
    assert Origin(None, 3).where is None
