"""Prove a kustomize build reads nothing outside the source root, before kustomize runs.

kustomize-controller builds with load restrictions off but on a filesystem confined to the
source root (fluxcd/pkg ``kustomize/filesys``, ``MakeFsOnDiskSecure``: every path is resolved,
symlinks included, and refused when it leaves the root). The ``kustomize`` binary kubegate runs
has no such filesystem, and ``--load-restrictor LoadRestrictionsRootOnly`` is stricter than Flux
(it refuses ``patches: [{path: ../common/p.yaml}]``, which Flux builds). So kubegate proves the
same confinement beforehand: :func:`check_build` walks every kustomization file the build would
read (the prepared one, then each local ``resources``/``components`` directory, recursively) and
checks every path a field of kustomize's ``Kustomization`` type can name (api/types
``kustomization.go``: resources, bases, components, crds, configurations, patches*,
replacements, config map and secret generators' files/envs/env, helm charts and globals,
generators/transformers/validators and the builtin plugin configs they hold, openapi). A path
must be relative, stay inside the root once ``..`` is applied (lexically, as kustomize joins
paths) and once symlinks are resolved, and name a regular file or directory; anything else is a
:class:`~kubegate.errors.RenderError` naming the kustomization file and the field, never the
content of what it points at. kustomize decodes a kustomization with Go's ``encoding/json``,
whose field names match case-insensitively: so do the checks here.

Remote references (``resources: [https://...]``, git URLs, ``oci://``) are returned as
:class:`RemoteRef` values for the caller to refuse or fetch (``--allow-remote-bases``); a remote
reference in any other field is refused here (kustomize would fetch it over HTTP).

The same walk records what the build can read (:class:`BuildReads`: every path it named, where
that path really leads, the kustomization directories it enters) and what it could not follow
(a remote reference, a helm chart, a field kustomize's type does not have): the render cache
(:mod:`kubegate.render.buildcache`) keys a build on exactly those files.

Called by the fleet walker before every kustomize build.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubegate.display import quoted
from kubegate.errors import RenderError
from kubegate.render.provenance import KUSTOMIZATION_FILES
from kubegate.render.yamlfile import MAX_FILE_BYTES, decode, load_documents, parse_documents

_logger = logging.getLogger(__name__)

#: Prefixes kustomize's git and OCI loaders take as remote (api/internal/git/repospec.go
#: ``parseHostSpec``; api/internal/loader ``IsRemoteFile``), compared lower-cased.
_REMOTE_PREFIXES = (
    "git::",
    "gh:",
    "ssh://",
    "https://",
    "http://",
    "git@",
    "github.com:",
    "github.com/",
    "oci://",
    "file://",
)
#: A hostile tree could nest kustomizations without end; no real one comes close.
MAX_KUSTOMIZATIONS = 2000

#: Fields of kustomize's ``Kustomization`` (api/types/kustomization.go) that name no file: the
#: walk has nothing to check in them. kustomize decodes with ``DisallowUnknownFields``, so a
#: field in neither this list nor the walk's fails the build; the render cache, which trusts
#: the walk to have seen every file, does not follow such a kustomization at all.
PLAIN_FIELDS = frozenset(
    {
        "apiversion",
        "kind",
        "metadata",
        "nameprefix",
        "namesuffix",
        "namespace",
        "commonlabels",
        "labels",
        "commonannotations",
        "images",
        "replicas",
        "vars",
        "generatoroptions",
        "inventory",
        "buildmetadata",
        "sortoptions",
    }
)
#: Fields the walk follows (lower-cased): see :meth:`_Checker.kustomization`.
FILE_FIELDS = frozenset(
    {
        "resources",
        "bases",
        "components",
        "crds",
        "configurations",
        "patchesstrategicmerge",
        "patches",
        "patchesjson6902",
        "replacements",
        "configmapgenerator",
        "secretgenerator",
        "helmglobals",
        "helmcharts",
        "helmchartinflationgenerator",
        "generators",
        "transformers",
        "validators",
        "openapi",
    }
)
#: Fields whose reads depend on more than named files (a chart home is read whole, a chart may
#: be pulled): checked for confinement, but a build using them is never cached.
_HELM_FIELDS = frozenset({"helmglobals", "helmcharts", "helmchartinflationgenerator"})
#: Builtin plugin kinds a generators/transformers/validators config may hold (kustomize
#: api/builtins); the walk knows which of their fields name files. Other kinds need plugins,
#: which kubegate never enables (the build fails).
_BUILTIN_KINDS = frozenset(
    {
        "annotationstransformer",
        "configmapgenerator",
        "hashtransformer",
        "iampolicygenerator",
        "imagetagtransformer",
        "labeltransformer",
        "namespacetransformer",
        "patchjson6902transformer",
        "patchstrategicmergetransformer",
        "patchtransformer",
        "prefixsuffixtransformer",
        "prefixtransformer",
        "suffixtransformer",
        "replacementtransformer",
        "replicacounttransformer",
        "secretgenerator",
        "sortordertransformer",
        "valueaddtransformer",
    }
)


@dataclass(slots=True)
class BuildReads:
    """What one build can read, as the confinement walk followed it (paths relative to the root).

    ``paths`` maps every path a field named (joined lexically to its kustomization's directory)
    to the path it really is once links are resolved (None: nothing there: kustomize then fails,
    or reads a ``patchesStrategicMerge`` entry as inline text). ``directories`` are the real
    directories whose kustomization file kustomize reads. ``unfollowed`` says why the list may
    be incomplete (empty: it is complete).
    """

    paths: dict[str, str | None] = field(default_factory=dict)
    directories: set[str] = field(default_factory=set)
    unfollowed: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RemoteRef:
    """A remote resource or component: where it is named and what it names."""

    #: Source-relative path of the kustomization file naming it.
    file: str
    #: The field, e.g. ``resources[2]``.
    field: str
    url: str
    #: Source-relative directory of that kustomization (where a fetched copy would go).
    directory: str


def is_remote(value: str) -> bool:
    """Whether kustomize would fetch ``value`` over the network (git, HTTP or OCI)."""
    lower = value.strip().lower()
    return lower.startswith(_REMOTE_PREFIXES) or "://" in lower or "_git/" in lower


def show(value: str) -> str:
    """``value`` quoted for a message (:func:`kubegate.display.quoted`, 120 characters)."""
    return quoted(value, 120)


def _fields(mapping: dict[Any, Any], name: str) -> Iterator[Any]:
    """Every value of ``mapping`` whose key matches ``name`` case-insensitively (Go json)."""
    for key, value in mapping.items():
        if isinstance(key, str) and key.lower() == name.lower():
            yield value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _mappings(value: Any) -> list[dict[Any, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def _entries(
    mapping: dict[Any, Any], name: str, items: Callable[[Any], list[Any]] = _strings
) -> Iterator[tuple[int, Any]]:
    """(index, item) of the strings (or ``items``) of every field ``name`` of ``mapping``.

    The index counts within one field, as kustomize's messages and ours number list entries.
    """
    for value in _fields(mapping, name):
        yield from enumerate(items(value))


@dataclass(slots=True)
class _Checker:
    root: Path
    remote: list[RemoteRef]
    visited: set[Path]
    #: YAML files already checked for alias bombs.
    checked: set[Path] = field(default_factory=set)
    reads: BuildReads = field(default_factory=BuildReads)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() or "."

    def resolve(self, directory: Path, value: str, where: str, field: str) -> Path | None:
        """The real path ``value`` names from ``directory``; None when nothing is there.

        Raises when the name, followed lexically or through links, leaves the root or names
        something that is not a regular file or directory (``/proc``, ``/dev``, fifos).
        """
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise RenderError(f"{field}: path {show(value)} holds control characters", where=where)
        if os.path.isabs(value) or value.startswith("~"):
            raise RenderError(
                f"{field}: absolute path {show(value)} is outside the source root "
                "(kustomize-controller confines a build to it)",
                where=where,
            )
        joined = Path(os.path.normpath(directory / value))
        if joined != self.root and self.root not in joined.parents:
            raise RenderError(
                f"{field}: path {show(value)} leaves the source root "
                "(kustomize-controller confines a build to it)",
                where=where,
            )
        real = Path(os.path.realpath(joined))
        if real != self.root and self.root not in real.parents:
            raise RenderError(
                f"{field}: path {show(value)} resolves outside the source root through a "
                "symbolic link",
                where=where,
            )
        try:
            mode = os.stat(real).st_mode
        except FileNotFoundError:
            self.reads.paths[self.rel(joined)] = None
            return None
        except OSError as exc:
            raise RenderError(
                f"{field}: cannot read {show(value)}: {exc.strerror}", where=where
            ) from exc
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise RenderError(
                f"{field}: {show(value)} is not a regular file or directory", where=where
            )
        self.reads.paths[self.rel(joined)] = self.rel(real)
        return real

    def file(
        self, directory: Path, value: str, where: str, field: str, *, parsed: bool = True
    ) -> None:
        """``value`` must be a regular file in the root (``parsed``: kustomize reads it as YAML)."""
        if is_remote(value):
            raise RenderError(
                f"{field}: remote file {show(value)} is not fetched: kubegate judges only "
                "what the revision holds",
                where=where,
            )
        real = self.resolve(directory, value, where, field)
        if real is None:
            return  # kustomize fails the build with its own message: nothing is read
        if not real.is_file():
            raise RenderError(f"{field}: {show(value)} is not a file", where=where)
        if parsed:
            self.aliases(real)

    def aliases(self, real: Path) -> None:
        """Refuse a YAML file kustomize would read whose aliases explode (yamlload.py).

        kustomize's own YAML reader chews for minutes on a billion-laughs document (measured:
        over 120 s on one ConfigMap), so the files it parses are checked first. Only a file
        holding both an anchor and an alias mark can explode; others are not parsed here.
        """
        if real in self.checked:
            return
        self.checked.add(real)
        rel = self.rel(real)
        try:
            with real.open("rb") as handle:
                head = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise RenderError(f"cannot read: {exc.strerror}", where=rel) from exc
        if b"&" in head and b"*" in head:
            # The bytes already read, parsed as load_documents would read them from the file.
            parse_documents(decode(head, rel), rel, values=False)

    def directory(self, directory: Path, value: str, where: str, field: str) -> None:
        """``value``, when set, must be a directory inside the root (helm homes)."""
        if not value:
            return
        real = self.resolve(directory, value, where, field)
        if real is not None and not real.is_dir():
            raise RenderError(f"{field}: {show(value)} is not a directory", where=where)

    def file_or_inline(self, directory: Path, value: str, where: str, field: str) -> bool:
        """A ``patchesStrategicMerge`` entry: a file when one is there, else inline text.

        Returns whether it is a file. kustomize reads it as a file whenever the read succeeds
        (api/types FixKustomizationPreMarshalling), so a name of anything outside the root is
        refused even though it could have been inline text.
        """
        if "\n" in value:
            return False
        if is_remote(value):
            raise RenderError(f"{field}: remote file {show(value)} is not fetched", where=where)
        if os.path.isabs(value) or os.path.lexists(os.path.normpath(directory / value)):
            real = self.resolve(directory, value, where, field)
            if real is not None and real.is_file():
                self.aliases(real)
            return real is not None
        # Nothing by that name: the text itself is the patch, as kustomize reads it.
        self.resolve(directory, value, where, field)
        return False

    def kustomization(self, directory: Path, kus: dict[Any, Any], where: str) -> None:
        """Check one kustomization (already parsed) rooted at ``directory``."""
        self.visited.add(directory)
        if len(self.visited) > MAX_KUSTOMIZATIONS:
            raise RenderError(f"more than {MAX_KUSTOMIZATIONS} kustomizations", where=where)
        self.reads.directories.add(self.rel(directory))
        for key in kus:
            lower = str(key).lower()
            if lower in _HELM_FIELDS:
                self.reads.unfollowed.append(f"{where}: {key} (helm charts)")
            elif lower not in FILE_FIELDS and lower not in PLAIN_FIELDS:
                self.reads.unfollowed.append(f"{where}: unknown field {show(str(key))}")
        for name in ("resources", "bases", "components"):
            for index, entry in _entries(kus, name):
                self.base(directory, entry, where, f"{name}[{index}]")
        for name in ("crds", "configurations"):
            for index, entry in _entries(kus, name):
                self.file(directory, entry, where, f"{name}[{index}]")
        for index, entry in _entries(kus, "patchesStrategicMerge"):
            self.file_or_inline(directory, entry, where, f"patchesStrategicMerge[{index}]")
        for name in ("patches", "patchesJson6902", "replacements"):
            for index, patch in _entries(kus, name, _mappings):
                for _, item in _entries(patch, "path"):
                    self.file(directory, item, where, f"{name}[{index}].path")
        for name in ("configMapGenerator", "secretGenerator"):
            for index, args in _entries(kus, name, _mappings):
                self.generator_args(directory, args, where, f"{name}[{index}]")
        for _, settings in _entries(kus, "helmGlobals", _mappings):
            self.plugin_dirs(directory, settings, where, "helmGlobals")
        for name in ("helmCharts", "helmChartInflationGenerator"):
            for index, chart in _entries(kus, name, _mappings):
                self.plugin_dirs(directory, chart, where, f"{name}[{index}]")
        for name in ("generators", "transformers", "validators"):
            for index, entry in _entries(kus, name):
                self.plugin(directory, entry, where, f"{name}[{index}]")
        for _, openapi in _entries(kus, "openapi", _mappings):
            for _, item in _entries(openapi, "path"):
                self.file(directory, item, where, "openapi.path")

    def generator_args(self, directory: Path, args: dict[Any, Any], where: str, field: str) -> None:
        for index, entry in _entries(args, "files"):
            # ``key=path`` or ``path`` (api/kv ParseFileSource): check every reading.
            paths = {entry.partition("=")[2], entry.rpartition("=")[2]} if "=" in entry else {entry}
            for path in sorted(paths):
                self.file(directory, path, where, f"{field}.files[{index}]", parsed=False)
        for name in ("envs", "env"):
            for index, entry in _entries(args, name):
                label = f"{field}.{name}[{index}]" if name == "envs" else f"{field}.env"
                self.file(directory, entry, where, label, parsed=False)

    def plugin_dirs(self, directory: Path, entry: dict[Any, Any], where: str, field: str) -> None:
        """Helm chart settings: homes are directories, values files are files."""
        for key, value in entry.items():
            if not isinstance(key, str):
                continue
            lower = key.lower()
            if lower in ("charthome", "confighome", "helmhome"):
                for item in _strings(value):
                    self.directory(directory, item, where, f"{field}.{key}")
            elif lower in ("valuesfile", "additionalvaluesfiles", "values"):
                for item in _strings(value):
                    self.file(directory, item, where, f"{field}.{key}")

    def plugin(self, directory: Path, entry: str, where: str, field: str) -> None:
        """A generators/transformers/validators entry: inline configs, or a file of them.

        kustomize tries the text as inline objects first, then as a path (api/internal/target
        ``configureExternalGenerators``); a one-line entry is checked as a path either way.
        """
        if is_remote(entry):
            raise RenderError(
                f"{field}: remote plugin configuration {show(entry)} is not fetched", where=where
            )
        real = None if "\n" in entry else self.resolve(directory, entry, where, field)
        configs = _inline_configs(entry, where)
        if configs is None:
            if real is None:
                return  # kustomize fails the build with its own message: nothing is read
            if real.is_dir():
                # The configs would be the output of that kustomization, after its own
                # patches and replacements: what they name cannot be checked beforehand.
                raise RenderError(
                    f"{field}: a kustomization directory of plugin configurations "
                    f"({show(entry)}) is not supported; list the files",
                    where=where,
                )
            configs = [d.value for d in load_documents(real, self.rel(real))]
        for index, config in enumerate(configs):
            if isinstance(config, dict):
                self.plugin_config(directory, config, where, f"{field}[{index}]")

    def plugin_config(
        self, directory: Path, config: dict[Any, Any], where: str, field: str
    ) -> None:
        kind = str(config.get("kind", "")).lower()
        if kind not in _BUILTIN_KINDS or kind == "helmchartinflationgenerator":
            self.reads.unfollowed.append(f"{where}: {field} of kind {show(kind)}")
        if kind in ("configmapgenerator", "secretgenerator"):
            self.generator_args(directory, config, where, f"{field} {config.get('kind')}")
        elif kind == "helmchartinflationgenerator":
            self.plugin_dirs(directory, config, where, f"{field} {config.get('kind')}")
        elif kind == "replacementtransformer":
            for index, entry in _entries(config, "replacements", _mappings):
                for _, item in _entries(entry, "path"):
                    self.file(directory, item, where, f"{field}.replacements[{index}].path")
        elif kind == "patchstrategicmergetransformer":
            for index, item in _entries(config, "paths"):
                self.file(directory, item, where, f"{field}.paths[{index}]")
        else:
            for _, item in _entries(config, "path"):
                self.file(directory, item, where, f"{field}.path")

    def base(self, directory: Path, entry: str, where: str, field: str) -> None:
        """A resources/bases/components entry: a file, a kustomization directory or remote."""
        if is_remote(entry):
            self.remote.append(RemoteRef(where, field, entry, self.rel(directory)))
            self.reads.unfollowed.append(f"{where}: {field} is remote")
            return
        real = self.resolve(directory, entry, where, field)
        if real is None:
            # Not remote (is_remote() covers every form kustomize's git and OCI loaders
            # accept), so kustomize fails the build itself without reading anything.
            return
        if real.is_file():
            self.aliases(real)
        if real.is_dir() and real not in self.visited:
            found = next(
                (real / name for name in KUSTOMIZATION_FILES if (real / name).is_file()), None
            )
            if found is None:
                return  # kustomize fails the build itself: nothing is read
            rel = self.rel(found)
            docs = load_documents(found, rel)
            kus = docs[0].value if docs and isinstance(docs[0].value, dict) else {}
            self.kustomization(real, kus, rel)


def _inline_configs(entry: str, where: str) -> list[Any] | None:
    """Objects written inline in a generators/transformers entry (kustomize tries that first)."""
    if "\n" not in entry and ":" not in entry:
        return None
    try:
        docs = parse_documents(entry, where)
    except RenderError:
        return None
    values = [d.value for d in docs]
    if values and all(isinstance(v, dict) for v in values):
        return values
    return None


def check_build(root: Path, directory: Path, kus: dict[Any, Any], where: str) -> list[RemoteRef]:
    """Check the build of ``kus`` (the kustomization kustomize will read in ``directory``).

    ``root`` and ``directory`` are paths of the source tree (the farm mirrors it exactly);
    ``where`` names the kustomization file in errors. Returns the remote references met.
    """
    return trace_build(root, directory, kus, where)[0]


def trace_build(
    root: Path, directory: Path, kus: dict[Any, Any], where: str
) -> tuple[list[RemoteRef], BuildReads]:
    """:func:`check_build`, also returning what the build can read (:class:`BuildReads`)."""
    real_root = Path(os.path.realpath(root))
    checker = _Checker(real_root, [], set())
    start = Path(os.path.realpath(directory))
    checker.kustomization(start, kus, where)
    return checker.remote, checker.reads
