"""Which OSV feeds exist and which ``kubegate db update`` fetches by default, in what order.

Used by :mod:`kubegate.vulndb.update` and the ``db update`` command (``--ecosystem`` names). A
feed is a base ecosystem: the ecosystem string cut at its first ``:`` (OSV.md "Data"), which is
also the bucket directory of its files.
"""

from __future__ import annotations

from collections.abc import Iterable

from kubegate.errors import UsageError

#: The public OSV bucket (OSV.md "Data").
DEFAULT_SOURCE = "https://osv-vulnerabilities.storage.googleapis.com/"
#: Updated by default, in this order, after the ecosystems the user's images were seen to need.
DEFAULT_ECOSYSTEMS: tuple[str, ...] = (
    "Debian",
    "Ubuntu",
    "Alpine",
    "Red Hat",
    "AlmaLinux",
    "Rocky Linux",
    "SUSE",
    "openSUSE",
    "Wolfi",
    "Chainguard",
    "PyPI",
    "npm",
    "Go",
    "Maven",
    "RubyGems",
    "crates.io",
    "NuGet",
    "Packagist",
)
#: Names accepted by ``--ecosystem`` (the defaults plus feeds the matcher also knows).
KNOWN_ECOSYSTEMS: tuple[str, ...] = (*DEFAULT_ECOSYSTEMS, "Hex", "Pub")


def parse_ecosystems(names: Iterable[str]) -> tuple[str, ...]:
    """``--ecosystem`` values -> known base ecosystems (``debian:12`` -> ``Debian``); exit 3."""
    by_folded = {name.casefold(): name for name in KNOWN_ECOSYSTEMS}
    chosen: list[str] = []
    for name in names:
        known = by_folded.get(name.split(":", 1)[0].strip().casefold())
        if known is None:
            raise UsageError(
                f"unknown ecosystem {name!r}; known: {', '.join(KNOWN_ECOSYSTEMS)}",
                where="--ecosystem",
            )
        if known not in chosen:
            chosen.append(known)
    return tuple(chosen)


def default_ecosystems(seen: Iterable[str] = ()) -> tuple[str, ...]:
    """The default list with the ecosystems the user's images were seen to need first."""
    first = [eco for eco in dict.fromkeys(seen) if eco in KNOWN_ECOSYSTEMS]
    return (*first, *(eco for eco in DEFAULT_ECOSYSTEMS if eco not in first))
