"""An empty ``all.zip`` is not a full update (issue 15 item 10).

A mirror serving a zip with no advisory records (empty, or holding only other files) would
otherwise set the ecosystem's cursor and import time: the database would call it fresh while it
holds nothing, and every image of that distribution would pass. The bucket is served by the real
loopback HTTP server (``tests.fixtures.httpserve``) in the OSV bucket's layout
(``tests.fixtures.osvbucket``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubegate.errors import VulnDBError
from kubegate.vulndb import VulnDB
from kubegate.vulndb.fetch import FetchOptions
from kubegate.vulndb.update import update
from tests.fixtures.httpserve import HTTPServe
from tests.fixtures.osvbucket import BucketTree, zip_bytes

FAST = FetchOptions(timeout=2.0, retries=1, backoff=0.01, max_retry_after=0.05)


@pytest.mark.parametrize(
    "archive",
    [zip_bytes({}), zip_bytes({"README.txt": b"nothing here\n"})],
    ids=["empty", "no-json"],
)
def test_empty_all_zip_fails_the_ecosystem(
    http_serve: HTTPServe, tmp_path: Path, archive: bytes
) -> None:
    tree = BucketTree()
    tree.feeds["Debian"] = {}
    url = tree.publish(http_serve)
    http_serve.add_many({"Debian/all.zip": archive})
    db = tmp_path / "osv.db"
    (result,) = update(db, ["Debian"], source=url, options=FAST)
    assert result.mode == "failed"
    assert isinstance(result.error, VulnDBError)
    assert "all.zip holds no advisory records; nothing applied" in result.error.diagnostics()
    if db.exists():
        with VulnDB(db) as opened:
            assert [s.ecosystem for s in opened.status().ecosystems] == []
            assert opened.meta("osv-cursor:") == {}
