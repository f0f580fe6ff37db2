"""The OSV advisory database (DESIGN.md "DB"): import, schema, queries, freshness, severities.

``store`` owns the SQLite file, ``importer`` loads zips/directories of OSV JSON into it,
``records`` validates records and derives index keys, ``severity`` reads vendor severities and
scores CVSS vectors. The matcher (``kubegate.match``) and ``kubegate db`` are the callers.
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
