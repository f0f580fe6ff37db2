"""The OSV advisory database (DESIGN.md "DB"): import, schema, queries, freshness, severities.

``store`` owns the SQLite file, ``importer`` loads zips/directories of OSV JSON into it,
``nvd`` reads NVD 2.0 feeds and ``nvdimport`` loads them and the Debian security tracker
(severity sources), ``update`` keeps it all current from the OSV bucket, NVD or a mirror
(``fetch`` reads the bucket, ``feeds`` names the ecosystems), ``records`` validates records
and derives index keys, ``severity`` reads vendor severities and scores CVSS vectors. The
matcher (``kubegate.match``), ``kubegate db`` and the scans (``ensure_updated``) are the callers.
"""

from kubegate.vulndb.importer import ImportStats, import_paths
from kubegate.vulndb.nvdrow import NvdCve, NvdMetric
from kubegate.vulndb.store import (
    DBStatus,
    EcosystemStatus,
    NvdStatus,
    TrackerStatus,
    VulnDB,
    resolve_db_path,
)

__all__ = [
    "DBStatus",
    "EcosystemStatus",
    "ImportStats",
    "NvdCve",
    "NvdMetric",
    "NvdStatus",
    "TrackerStatus",
    "VulnDB",
    "import_paths",
    "resolve_db_path",
]
