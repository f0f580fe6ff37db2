"""Every extractor is listed once in the explicit registry; parsers handle real-world forms."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import kubegate.inventory
from kubegate.inventory.dpkg import DpkgExtractor, stanzas
from kubegate.inventory.extractor import introducing_layers
from kubegate.inventory.extractors import EXTRACTORS, SNIFFERS
from kubegate.inventory.osrelease import parse_os_release
from kubegate.models import Digest


def _implementations() -> list[type]:
    found: list[type] = []
    for info in pkgutil.iter_modules(kubegate.inventory.__path__):
        module = importlib.import_module(f"kubegate.inventory.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or cls.__name__ == "Extractor":
                continue
            if all(hasattr(cls, attr) for attr in ("name", "version", "required", "extract")):
                found.append(cls)
    return found


def test_every_extractor_listed_exactly_once() -> None:
    implementations = _implementations()
    assert len(implementations) >= 3
    for cls in implementations:
        assert sum(type(e) is cls for e in EXTRACTORS) == 1, cls
    names = [e.name for e in EXTRACTORS]
    assert len(names) == len(set(names))
    assert EXTRACTORS[0].name == "os-release"  # package extractors need the OS first


def test_dpkg_required_paths() -> None:
    dpkg = DpkgExtractor()
    assert dpkg.required("var/lib/dpkg/status")
    assert dpkg.required("var/lib/dpkg/status.d/libc6")
    assert not dpkg.required("var/lib/dpkg/status.d/libc6.md5sums")
    assert dpkg.required("var/lib/dpkg/info/libssl3:amd64.list")
    assert not dpkg.required("var/lib/dpkg/info/libssl3:amd64.md5sums")
    assert not dpkg.required("var/lib/dpkg/status-old")
    assert not dpkg.required("usr/var/lib/dpkg/status")


def test_deb822_continuations_and_missing_final_newline() -> None:
    data = b"Package: a\nDescription: x\n more\n .\nVersion: 1\n\n\nPackage: b\nVersion: 2"
    keep = frozenset({"package", "version", "description"})
    assert [(s.line, s.fields) for s in stanzas(data, keep)] == [
        (1, {"package": "a", "description": "x\nmore\n.", "version": "1"}),
        (8, {"package": "b", "version": "2"}),
    ]
    # Only the fields asked for are kept (a status file's descriptions are never held).
    assert [s.fields for s in stanzas(data)] == [
        {"package": "a", "version": "1"},
        {"package": "b", "version": "2"},
    ]


def test_os_release_quoting() -> None:
    text = '# comment\nID=\'sles\'\nVERSION_ID="15.5"\nPRETTY_NAME="SUSE \\"Linux\\""\nbad\n'
    fields = parse_os_release(text)
    assert fields == {"ID": "sles", "VERSION_ID": "15.5", "PRETTY_NAME": 'SUSE "Linux"'}


def test_introducing_layers_follows_contiguous_history() -> None:
    l1, l2, l3 = (Digest(f"sha256:{c * 64}") for c in "123")
    history = [
        (l1, {"a": "1", "b": "1", "c": "1"}),
        (l2, {"a": "1", "b": "2", "c": "1"}),
        (l3, {"a": "1", "b": "2"}),
    ]
    assert introducing_layers(history) == {"a": l1, "b": l2}
    # Removed then reinstalled at the same version: the reinstall's layer.
    again = [(l1, {"a": "1"}), (l2, {}), (l3, {"a": "1"})]
    assert introducing_layers(again) == {"a": l3}
    assert introducing_layers([]) == {}


def test_every_sniffing_extractor_is_a_listed_sniffer() -> None:
    # The very instances of EXTRACTORS (their names and versions key the cached records).
    sniffing = {id(e) for e in EXTRACTORS if hasattr(e, "sniff")}
    assert sniffing == {id(s) for s in SNIFFERS}
    assert len(SNIFFERS) == len(sniffing) == 3


def test_sniffers_pick_cheap_candidates() -> None:
    by_name = {type(s).__name__: s for s in SNIFFERS}
    go, java, rpm = by_name["GoBinaryExtractor"], by_name["JavaExtractor"], by_name["RpmExtractor"]
    assert go.sniff("usr/local/bin/app", 0o755, 5_000_000) is not None
    assert go.sniff("usr/share/doc/readme", 0o644, 5_000) is None
    assert go.sniff("usr/bin/tiny", 0o755, 10) is None
    assert java.sniff("app/lib/x.JAR", 0o644, 1000) is not None
    assert java.sniff("app/lib/x.jar", 0o644, 10 * 1024**3) is None  # over the archive limit
    assert java.sniff("app/lib/x.zip", 0o644, 1000) is None
    assert rpm.sniff("usr/lib/sysimage/rpm/rpmdb.sqlite", 0o644, 1000) is not None
    assert rpm.sniff("var/lib/rpm/Packages", 0o644, 1000) is not None
    assert rpm.sniff("usr/share/rpm/Packages.db", 0o644, 1000) is not None
    assert rpm.sniff("home/user/rpmdb.sqlite", 0o644, 1000) is None
