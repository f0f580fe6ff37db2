"""Debian package versions (Debian Policy 5.6.12), compared by python-debian."""

from __future__ import annotations

from debian.debian_support import version_compare


class DpkgComparator:
    """``[epoch:]upstream[-revision]`` with ``~`` sorting before everything."""

    name = "dpkg"
    ecosystems = frozenset({"Debian", "Ubuntu"})

    def compare(self, a: str, b: str) -> int:
        """Compare two dpkg versions."""
        result: int = version_compare(a, b)
        return result
