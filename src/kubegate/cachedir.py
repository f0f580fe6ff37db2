"""Where kubegate keeps its state: ``$KUBEGATE_CACHE_DIR``, else the user cache dir.

Used by the inventory cache, the advisory database (``vulndb``) and the render cache
(``render/buildcache.py``); nothing is ever written outside this directory except private
temporary directories that are removed afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """The cache directory (created with mode 0700 if missing)."""
    configured = os.environ.get("KUBEGATE_CACHE_DIR")
    path = Path(configured) if configured else Path(platformdirs.user_cache_dir("kubegate"))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
