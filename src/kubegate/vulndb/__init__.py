"""The OSV advisory database (DESIGN.md "DB"): import, schema, queries, freshness, severities.

``store`` owns the SQLite file, ``importer`` loads zips/directories of OSV JSON into it,
``update`` keeps it current from the OSV bucket or a mirror (``fetch`` reads the bucket, ``feeds``
names the ecosystems), ``records`` validates records and derives index keys, ``severity`` reads
vendor severities and scores CVSS vectors. The matcher (``kubegate.match``), ``kubegate db`` and
the scans (``ensure_updated``) are the callers.
"""

from kubegate.vulndb.importer import ImportStats, import_paths
from kubegate.vulndb.store import DBStatus, EcosystemStatus, VulnDB, resolve_db_path

__all__ = [
    "DBStatus",
    "EcosystemStatus",
    "ImportStats",
    "VulnDB",
    "import_paths",
    "resolve_db_path",
]
