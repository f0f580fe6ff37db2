"""``python -m kubegate``: the same entry point as the ``kubegate`` console script."""

from kubegate.cli import main

raise SystemExit(main())
