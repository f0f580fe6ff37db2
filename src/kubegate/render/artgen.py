"""ExternalArtifacts an ArtifactGenerator of the revision produces: build them as source-watcher.

Flux 2.7's source-watcher (``source.extensions.fluxcd.io/v1beta1`` ArtifactGenerator) copies
files of other sources into new artifacts, each published as an ExternalArtifact named after
the artifact, in the generator's namespace; a Flux Kustomization may read one through
``sourceRef: {kind: ExternalArtifact}``. When the cluster being walked renders that generator
and every source it names is available to the walk (the scanned GitRepository, one supplied
with ``--source``, an OCIRepository pulled by :mod:`kubegate.render.ocisource`), the artifact's
``copy`` operations are applied here, in order, into a private directory of the walk's
workspace, as fluxcd/source-watcher ``internal/builder/builder.go`` applies them
(``applyCopyOperation``, ``applySingleSourceCopy``, ``applySingleFileCopy``,
``applySingleDirectoryCopy``, ``calculateGlobDestination``, ``sourceSelectionRoot``,
``shouldExcludePath``, ``copyDirWithRoots``), ``merge.go`` (``Merge``: Helm-style deep merge of
YAML maps) and ``extract.go`` (``Extract``: tarballs unpacked with kubegate's tarball rules).
The Kustomization is then built from that tree like Git content.

Otherwise the Kustomization is not seen, with the reason: the generator is not rendered by the
revision, a source is not available (another GitRepository not supplied, an OCIRepository not
pulled, a Bucket, HelmChart or ExternalArtifact source), the spec is invalid, or a copy fails
(no match, a ``..`` or absolute path, a hostile glob, a limit). ``pathPattern`` generators are
not expanded.

Provenance: a file copied whole keeps its bytes, hence its lines, so objects built from it name
the file it was copied from: a scanned-source path as for Git content, a ``--source`` tree's
path, or the OCI artifact's ``oci://...@sha256:.../path``. A file written by ``Merge`` or
unpacked by ``Extract`` has no such original; it is named ``ExternalArtifact NS/NAME:<path>``.
Used by the fleet walker (:mod:`kubegate.render.fleet`): :meth:`ArtifactGenerators.index`,
:meth:`ArtifactGenerators.tree`, :meth:`ArtifactGenerators.relabel`.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from kubegate.errors import RenderError, SourceError
from kubegate.models import Origin
from kubegate.render.artglob import (
    MAX_ALTERNATIVES,
    BadPattern,
    Pattern,
    compile_doublestar,
    compile_segment,
    has_meta,
    segment_match,
)
from kubegate.render.fluxks import FluxKustomization
from kubegate.render.result import ImageLocator, Located, RenderedObject
from kubegate.render.yamlfile import PathStep, decode, parse_documents
from kubegate.source.artifact import extract
from kubegate.source.limits import SourceLimits

_logger = logging.getLogger(__name__)

EXTERNAL_ARTIFACT_KIND = "ExternalArtifact"
GENERATOR_KIND = "ArtifactGenerator"
GENERATOR_GROUP = "source.extensions.fluxcd.io"

# The CRD's validation (api/v1beta1/artifactgenerator_types.go kubebuilder markers).
_ALIAS = re.compile(r"[a-z0-9]([a-z0-9_-]*[a-z0-9])?")
_FROM = re.compile(r"@([a-z0-9]([a-z0-9_-]*[a-z0-9])?)/(.*)", re.DOTALL)
_TO = re.compile(r"@(artifact)/(.*)", re.DOTALL)
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_STRATEGIES = ("Overwrite", "Merge", "Extract")
_MAX_PATH = 1024  # from/to MaxLength
_MAX_EXCLUDES = 100  # exclude MaxItems
_TARBALL = (".tar.gz", ".tgz")


@dataclass(frozen=True, slots=True)
class CopyOperation:
    """One ``artifacts[].copy[]`` entry."""

    source: str
    to: str
    exclude: tuple[str, ...]
    strategy: str


@dataclass(frozen=True, slots=True)
class OutputArtifact:
    """One ``artifacts[]`` entry: the ExternalArtifact ``name`` and its copy operations."""

    name: str
    copy: tuple[CopyOperation, ...]


@dataclass(frozen=True, slots=True)
class SourceRef:
    """One ``sources[]`` entry; ``key`` is ``namespace/name`` (the generator's by default)."""

    alias: str
    kind: str
    key: str


@dataclass(frozen=True, slots=True)
class Generator:
    """An ArtifactGenerator the cluster renders; ``invalid`` says why source-watcher refuses it."""

    key: str
    namespace: str
    sources: tuple[SourceRef, ...]
    artifacts: tuple[OutputArtifact, ...]
    path_pattern: bool
    origin: Origin
    invalid: str | None = None


@dataclass(frozen=True, slots=True)
class SourceTree:
    """A source's files and how provenance names a file of it (``label(rel)``)."""

    root: Path
    label: Callable[[str], str]


#: What a source resolver returns: the tree, why it is unavailable, or None (wait).
Resolved = SourceTree | str | None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def generator(value: Mapping[str, Any], origin: Origin, default_namespace: str) -> Generator | None:
    """The ArtifactGenerator ``value`` defines, or None for any other object."""
    if value.get("kind") != GENERATOR_KIND:
        return None
    if str(value.get("apiVersion", "")).partition("/")[0] != GENERATOR_GROUP:
        return None
    metadata = value.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    spec = value.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    namespace = _text(metadata.get("namespace")) or default_namespace
    sources: list[SourceRef] = []
    problems: list[str] = []
    for entry in spec.get("sources") or []:
        entry = entry if isinstance(entry, dict) else {}
        alias, kind = _text(entry.get("alias")), _text(entry.get("kind"))
        name = _text(entry.get("name"))
        if not _ALIAS.fullmatch(alias) or not name:
            problems.append(f"source alias {alias!r} (name {name!r}) is invalid")
        sources.append(
            SourceRef(alias, kind, f"{_text(entry.get('namespace')) or namespace}/{name}")
        )
    artifacts: list[OutputArtifact] = []
    for entry in spec.get("artifacts") or []:
        entry = entry if isinstance(entry, dict) else {}
        ops = []
        for op in entry.get("copy") or []:
            op = op if isinstance(op, dict) else {}
            exclude = op.get("exclude") or []
            ops.append(
                CopyOperation(
                    source=_text(op.get("from")),
                    to=_text(op.get("to")),
                    exclude=tuple(str(p) for p in exclude) if isinstance(exclude, list) else (),
                    strategy=_text(op.get("strategy")) or "Overwrite",
                )
            )
        artifacts.append(OutputArtifact(_text(entry.get("name")), tuple(ops)))
    path_pattern = bool(_text(spec.get("pathPattern")))
    problems.extend(_validate(sources, artifacts, path_pattern, spec))
    return Generator(
        key=f"{namespace}/{_text(metadata.get('name'))}",
        namespace=namespace,
        sources=tuple(sources),
        artifacts=tuple(artifacts),
        path_pattern=path_pattern,
        origin=origin,
        invalid="; ".join(problems) or None,
    )


def _validate(
    sources: Sequence[SourceRef],
    artifacts: Sequence[OutputArtifact],
    path_pattern: bool,
    spec: Mapping[str, Any],
) -> list[str]:
    """The CRD schema and ``validateSpec`` (internal/controller/artifactgenerator_validation.go)."""
    problems: list[str] = []
    aliases = [s.alias for s in sources]
    if not sources:
        problems.append("spec.sources is empty")
    if len(set(aliases)) != len(aliases):
        problems.append("duplicate source alias")
    names = [a.name for a in artifacts]
    if not artifacts:
        problems.append("spec.artifacts is empty")
    if len(set(names)) != len(names):
        problems.append("duplicate artifact name")
    for artifact in artifacts:
        if not path_pattern and not _DNS_SUBDOMAIN.fullmatch(artifact.name):
            problems.append(f"artifact name {artifact.name!r} is not a valid object name")
        if not artifact.copy:
            problems.append(f"artifact {artifact.name} has no copy operations")
        for op in artifact.copy:
            if not _FROM.fullmatch(op.source):
                problems.append(f"copy from {op.source!r} is not @alias/pattern")
            if not _TO.fullmatch(op.to):
                problems.append(f"copy to {op.to!r} is not @artifact/path")
            if max(len(op.source), len(op.to)) > _MAX_PATH or len(op.exclude) > _MAX_EXCLUDES:
                problems.append(
                    f"copy from {op.source[:64]!r}: from/to longer than {_MAX_PATH} characters "
                    f"or more than {_MAX_EXCLUDES} exclude patterns"
                )
            if op.strategy not in _STRATEGIES:
                problems.append(f"copy strategy {op.strategy!r} is unknown")
    for entry in spec.get("artifacts") or []:
        revision = _text(entry.get("revision")) if isinstance(entry, dict) else ""
        if revision and revision.removeprefix("@") not in aliases:
            problems.append(f"revision alias {revision!r} not found")
    return problems


@dataclass(frozen=True, slots=True)
class MappedLocator:
    """A locator whose artifact-relative file names become the names of their originals."""

    inner: ImageLocator
    files: Mapping[str, str]
    fallback: str

    def _origin(self, origin: Origin) -> Origin:
        if origin.file is None:
            return Origin(self.fallback.rstrip(":"), origin.line)
        named = self.files.get(origin.file)
        if named is None:
            return Origin(f"{self.fallback}{origin.file}", origin.line)
        return Origin(named, origin.line)

    def document(self) -> Origin:
        """The inner document's origin, named after its original."""
        return self._origin(self.inner.document())

    def locate(self, path: tuple[PathStep, ...]) -> Located:
        """The inner location, named after its original."""
        found = self.inner.locate(path)
        return Located(self._origin(found.origin), found.declared)


class CopyError(RenderError):
    """A copy operation source-watcher would fail (the artifact is never built)."""


@dataclass(slots=True)
class _Build:
    """The staging tree of one artifact being built and where each of its files came from."""

    root: Path
    limits: SourceLimits
    #: artifact path -> provenance name of the file it is a whole copy of (absent: rewritten).
    files: dict[str, str] = field(default_factory=dict)
    written: int = 0
    count: int = 0

    def target(self, rel: str) -> Path:
        """The staging path of ``rel``; refused when it leaves the artifact (os.Root)."""
        norm = posixpath.normpath(rel) if rel else "."
        if posixpath.isabs(rel) or any(part == ".." for part in rel.split("/")):
            raise CopyError(f"path {rel!r} leaves the artifact")
        return self.root if norm == "." else self.root / norm

    def account(self, size: int) -> None:
        self.written += size
        self.count += 1
        if self.written > self.limits.max_extracted_bytes or self.count > self.limits.max_entries:
            raise CopyError(
                f"the artifact exceeds {self.limits.max_extracted_bytes} bytes or "
                f"{self.limits.max_entries} files"
            )

    def mkdirs(self, rel: str) -> None:
        """createDirRecursive: make ``rel`` and its parents; an existing entry is kept."""
        target = self.target(rel)
        if target == self.root:
            return
        try:
            target.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise CopyError(f"cannot create directory {rel}: a file is in the way") from exc

    def write(self, rel: str, data: bytes, original: str | None) -> None:
        """copyRegularFileWithRoots: create or truncate ``rel`` with ``data``."""
        target = self.target(rel)
        norm = target.relative_to(self.root).as_posix()
        parent = posixpath.dirname(norm)
        if parent:
            self.mkdirs(parent)
        if target.is_dir():
            raise CopyError(f"cannot write {norm}: it is a directory")
        self.account(len(data))
        target.write_bytes(data)
        if original is None:
            self.files.pop(norm, None)
        else:
            self.files[norm] = original


def _read(source: SourceTree, rel: str, limit: int) -> bytes:
    path = source.root / rel
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            raise CopyError(f"source file {rel} is not a regular file")
        if info.st_size > limit:
            raise CopyError(f"source file {rel} is larger than {limit} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise CopyError(f"cannot read source file {rel}: {exc.strerror}") from exc


def _kind_of(source: SourceTree, rel: str) -> str | None:
    """'dir', 'file' or None (absent, or what an artifact never holds: links, devices)."""
    try:
        info = (source.root / rel).lstat() if rel != "." else source.root.lstat()
    except OSError:
        return None
    if stat.S_ISDIR(info.st_mode):
        return "dir"
    if stat.S_ISREG(info.st_mode):
        return "file"
    return None


def _list(source: SourceTree, rel: str) -> list[str]:
    path = source.root if rel == "." else source.root / rel
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _join(*parts: str) -> str:
    """Go ``filepath.Join``: joined and cleaned, "" parts dropped."""
    kept = [p for p in parts if p]
    return posixpath.normpath(posixpath.join(*kept)) if kept else ""


def _fs_glob(source: SourceTree, pattern: str) -> list[str]:
    """Go ``io/fs.Glob`` over the source tree (``path.Match`` per segment)."""
    for segment in pattern.split("/"):
        compile_segment(segment)  # path.Match(pattern, "") reports ErrBadPattern first
    if not has_meta(pattern):
        valid = _valid_path(pattern)
        return [pattern] if valid and _kind_of(source, pattern) is not None else []
    head, _, file = pattern.rpartition("/")
    directory = head if "/" in pattern else "."
    if not has_meta(directory):
        return _glob_dir(source, directory, file)
    if directory == pattern:
        raise BadPattern("pattern recursion")
    found: list[str] = []
    for match in _fs_glob(source, directory):
        found.extend(_glob_dir(source, match, file))
    return found


def _valid_path(rel: str) -> bool:
    """io/fs ``ValidPath``: what an ``os.Root`` file system accepts."""
    if rel == ".":
        return True
    return bool(rel) and all(part not in ("", ".", "..") for part in rel.split("/"))


def _glob_dir(source: SourceTree, directory: str, file: str) -> list[str]:
    if not _valid_path(directory) or _kind_of(source, directory) != "dir":
        return []  # fs.Glob ignores I/O errors
    tokens = compile_segment(file)
    return [
        name if directory == "." else f"{directory}/{name}"
        for name in _list(source, directory)
        if segment_match(tokens, name)
    ]


def _doublestar_glob(source: SourceTree, pattern: str) -> list[str]:
    """doublestar.Glob: every path of the tree (files and directories) the pattern matches."""
    compiled = compile_doublestar(pattern)
    found = ["."] if compiled.match(".") else []
    for dirpath, dirnames, filenames in os.walk(source.root):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(source.root).as_posix()
        for name in sorted([*dirnames, *filenames]):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if compiled.match(rel):
                found.append(rel)
    return found


#: A compiled exclude pattern and whether it holds a separator.
_Exclude = tuple[Pattern, bool]


def _compile_excludes(patterns: Sequence[str]) -> list[_Exclude]:
    """The patterns of one operation, compiled once; their alternatives bounded together, as
    each path is matched against all of them."""
    compiled: list[_Exclude] = []
    for pattern in patterns:
        try:
            compiled.append((compile_doublestar(pattern), "/" in pattern))
        except BadPattern as exc:
            raise CopyError(f"invalid exclude pattern {pattern!r}: {exc}") from exc
    if sum(len(p.alternatives) for p, _ in compiled) > MAX_ALTERNATIVES:
        raise CopyError(f"exclude patterns expand to more than {MAX_ALTERNATIVES} alternatives")
    return compiled


def _excluded(rel: str, base: str, patterns: Sequence[_Exclude]) -> bool:
    """shouldExcludePath: match the source-relative path, then the one relative to ``base``."""
    if not patterns:
        return False
    if _matches_any(rel, patterns):
        return True
    base = posixpath.normpath(base) if base else "."
    rel = posixpath.normpath(rel)
    if base == ".":
        return False
    relative = posixpath.relpath(rel, base)
    if relative == ".." or relative.startswith("../") or relative in (".", rel):
        return False
    return _matches_any(relative, patterns)


def _matches_any(rel: str, patterns: Sequence[_Exclude]) -> bool:
    """shouldExclude: a doublestar match of the path, or of the base name for a pattern
    without a separator ("*.md" at any depth)."""
    name = posixpath.basename(rel)
    return any(
        compiled.match(rel) or (not slashed and compiled.match(name))
        for compiled, slashed in patterns
    )


def _selection_root(pattern: str) -> str:
    """sourceSelectionRoot: the literal prefix before the first glob segment."""
    parts = []
    for part in posixpath.normpath(pattern).split("/"):
        if _is_glob(part):
            break
        parts.append(part)
    return _join(*parts) or "."


def _is_glob(text: str) -> bool:
    """containsGlobChars (note "]", unlike fs.Glob's hasMeta)."""
    return any(char in text for char in "*?[]")


def _merge_maps(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """mergeMap (merge.go): nested maps merged, anything else (lists too) replaced."""
    out = dict(base)
    for key, value in overlay.items():
        current = out.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            out[key] = _merge_maps(current, value)
        else:
            out[key] = value
    return out


def _load_yaml(data: bytes, where: str) -> dict[str, Any]:
    """loadYAML (merge.go): every document of the file merged into one map."""
    out: dict[str, Any] = {}
    for doc in parse_documents(decode(data, where), where):
        if doc.value is None:
            continue
        if not isinstance(doc.value, dict):
            raise CopyError(f"cannot merge {where}: a YAML document is not a map")
        out = _merge_maps(out, {str(k): v for k, v in doc.value.items()})
    return out


class _Copier:
    """Applies the copy operations of one artifact (builder.go ``applyCopyOperations``)."""

    def __init__(self, build: _Build, sources: Mapping[str, SourceTree], base: Path) -> None:
        self.build = build
        self.sources = sources
        self.base = base
        self.excludes: list[_Exclude] = []

    def apply(self, op: CopyOperation) -> None:
        matched = _FROM.fullmatch(op.source)
        dest = _TO.fullmatch(op.to)
        if matched is None or dest is None:
            raise CopyError("invalid copy source or destination")
        alias, pattern = matched.group(1), matched.group(3)
        dest_rel = dest.group(2)
        source = self.sources.get(alias)
        if source is None:
            raise CopyError(f"source alias '{alias}' not found")
        excludes = self.excludes = _compile_excludes(op.exclude)
        if any(part == ".." for part in pattern.split("/")) or pattern.startswith("/"):
            raise CopyError(f"source pattern {pattern!r} leaves the source")
        self.build.target(dest_rel)  # refuse a destination leaving the artifact up front
        if not _is_glob(pattern):
            self._single(op, source, pattern, dest_rel, op.to.endswith("/"))
            return
        try:
            if op.strategy == "Extract":
                matches = _doublestar_glob(source, pattern)
            else:
                matches = _fs_glob(source, pattern)
        except BadPattern as exc:
            raise CopyError(f"invalid glob pattern '{pattern}': {exc}") from exc
        if not matches:
            raise CopyError(f"no files match pattern '{pattern}' in source '{alias}'")
        base = _selection_root(pattern)
        kept = [m for m in matches if m not in (".", "..") and not _excluded(m, base, excludes)]
        if not kept:
            raise CopyError(
                f"all files matching pattern '{pattern}' in source '{alias}' were excluded"
            )
        for match in kept:
            if op.strategy == "Extract":
                if match.lower().endswith(_TARBALL) and _kind_of(source, match) == "file":
                    self._extract(source, match, dest_rel)
                continue
            self._copy(op, source, match, _glob_destination(pattern, match, dest_rel), base)

    def _single(
        self, op: CopyOperation, source: SourceTree, rel: str, dest: str, into: bool
    ) -> None:
        rel = posixpath.normpath(rel)
        kind = _kind_of(source, rel)
        if kind is None:
            raise CopyError(f"source '{rel}' does not exist")
        if kind == "dir":
            if op.strategy == "Extract":
                raise CopyError(f"extract strategy is not supported for directories, got '{rel}'")
            # applySingleDirectoryCopy: cp -r dir dest -> dest/dir
            self._copy(op, source, rel, _join(dest, posixpath.basename(rel)), rel)
            return
        if _excluded(rel, ".", self.excludes):
            return
        if op.strategy == "Extract":
            if not rel.lower().endswith(_TARBALL):
                raise CopyError(f"extract strategy requires tarball file, got '{rel}'")
            self._extract(source, rel, dest)
            return
        name = posixpath.basename(rel)
        if into or (dest and self.build.target(dest).is_dir()):
            final = _join(dest, name)
        else:
            final = dest
        self._copy(op, source, rel, final, ".")

    def _copy(self, op: CopyOperation, source: SourceTree, rel: str, dest: str, base: str) -> None:
        """copyFileWithRoots: a directory recursively, a file merged or overwritten."""
        if _kind_of(source, rel) == "dir":
            self._copy_dir(op, source, rel, dest, base)
            return
        if op.strategy == "Merge" and self.build.target(dest).exists():
            merged = _merge_maps(
                _load_yaml(self.build.target(dest).read_bytes(), dest),
                _load_yaml(_read(source, rel, self.build.limits.max_extracted_bytes), rel),
            )
            try:
                text = yaml.safe_dump(merged, sort_keys=True, default_flow_style=False)
            except yaml.YAMLError as exc:
                raise CopyError(f"cannot write the merge of {rel} into {dest}: {exc}") from exc
            self.build.write(dest, text.encode(), None)
            return
        self.build.write(
            dest, _read(source, rel, self.build.limits.max_extracted_bytes), source.label(rel)
        )

    def _copy_dir(
        self, op: CopyOperation, source: SourceTree, rel: str, dest: str, base: str
    ) -> None:
        """copyDirWithRoots: a walk in lexical order; excluded directories are skipped whole.
        Files inside are always overwritten, whatever the strategy (as source-watcher)."""
        self.build.mkdirs(dest)
        root = source.root / rel
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            sub = here.relative_to(root).as_posix()
            sub = "" if sub == "." else sub
            kept_dirs = []
            for name in sorted(dirnames):
                path = _join(rel, sub, name)
                if _excluded(path, base, self.excludes) or (here / name).is_symlink():
                    continue
                self.build.mkdirs(_join(dest, sub, name))
                kept_dirs.append(name)
            dirnames[:] = kept_dirs
            for name in sorted(filenames):
                path = _join(rel, sub, name)
                if _excluded(path, base, self.excludes) or _kind_of(source, path) != "file":
                    continue
                self.build.write(
                    _join(dest, sub, name),
                    _read(source, path, self.build.limits.max_extracted_bytes),
                    source.label(path),
                )

    def _extract(self, source: SourceTree, rel: str, dest: str) -> None:
        """extractTarball: unpacked (kubegate's tarball rules) over ``dest``."""
        staging = Path(tempfile.mkdtemp(prefix="extract-", dir=self.base))
        try:
            try:
                extract(source.root / rel, staging, limits=self.build.limits, label=rel)
            except SourceError as exc:
                raise CopyError(f"failed to extract tarball '{rel}': {exc.message}") from exc
            self.build.mkdirs(dest)
            for dirpath, _, filenames in os.walk(staging):
                sub = Path(dirpath).relative_to(staging).as_posix()
                for name in sorted(filenames):
                    inner = name if sub == "." else f"{sub}/{name}"
                    path = staging / inner
                    if path.is_symlink() or not path.is_file():
                        continue
                    self.build.write(_join(dest, inner), path.read_bytes(), None)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _glob_destination(pattern: str, match: str, dest: str) -> str:
    """calculateGlobDestination: ``dir/**`` strips ``dir/``; other globs keep the match path."""
    if pattern.endswith("/**"):
        prefix = pattern[: -len("/**")] + "/"
        if match.startswith(prefix):
            return _join(dest, match[len(prefix) :])
    return _join(dest, match)


def build_artifact(
    artifact: OutputArtifact,
    sources: Mapping[str, SourceTree],
    dest: Path,
    limits: SourceLimits,
) -> dict[str, str]:
    """Apply ``artifact``'s copy operations into the empty ``dest`` (ArtifactBuilder.Build);
    returns artifact path -> provenance name of each file copied whole."""
    build = _Build(dest, limits)
    copier = _Copier(build, sources, dest.parent)
    for op in artifact.copy:
        try:
            copier.apply(op)
        except CopyError as exc:
            raise CopyError(f"copy from '{op.source}' to '{op.to}' failed: {exc.message}") from exc
        except RenderError as exc:
            raise CopyError(f"copy from '{op.source}' to '{op.to}' failed: {exc}") from exc
        except (OSError, ValueError) as exc:
            # A name the file system refuses (too long, a NUL byte): the copy fails there too.
            raise CopyError(f"copy from '{op.source}' to '{op.to}' failed: {exc}") from exc
    return build.files


#: Resolves one generator source to a tree (see :class:`SourceTree`).
SourceResolver = Callable[[SourceRef, bool], Resolved]


@dataclass(slots=True)
class ArtifactGenerators:
    """The ArtifactGenerators one cluster walk knows and the artifacts built from them."""

    #: Private directory (the walk's workspace) where artifacts are staged.
    base: Path
    limits: SourceLimits = field(default_factory=SourceLimits)
    generators: dict[str, Generator] = field(default_factory=dict)
    #: ExternalArtifact key -> (tree, files) or the reason it is not seen.
    built: dict[str, tuple[Path, dict[str, str]] | str] = field(default_factory=dict)
    #: Kustomization key -> (ExternalArtifact key, files) of what it rendered from.
    used: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def index(self, value: Mapping[str, Any], origin: Origin, default_namespace: str) -> bool:
        """Remember an ArtifactGenerator the cluster renders; whether ``value`` was one."""
        found = generator(value, origin, default_namespace)
        if found is None:
            return False
        self.generators.setdefault(found.key, found)
        return True

    def _producer(self, key: str) -> tuple[Generator, OutputArtifact] | None:
        namespace, _, name = key.partition("/")
        for gen in self.generators.values():
            if gen.namespace != namespace or gen.path_pattern:
                continue
            for artifact in gen.artifacts:
                if artifact.name == name:
                    return gen, artifact
        return None

    def tree(
        self, ks: FluxKustomization, key: str, settled: bool, resolve: SourceResolver
    ) -> Path | str | None:
        """The tree ``ks`` renders from, why it is not seen (a string), or None: wait, the
        generator or a source may still be rendered by another Kustomization."""
        if key not in self.built:
            found = self._producer(key)
            if found is None:
                if not settled:
                    return None
                namespace = key.partition("/")[0]
                patterned = [
                    g.key
                    for g in self.generators.values()
                    if g.namespace == namespace and g.path_pattern
                ]
                if patterned:
                    return (
                        f"its source ExternalArtifact {key} is not an artifact of an "
                        f"ArtifactGenerator kubegate can build (ArtifactGenerator "
                        f"{patterned[0]} uses spec.pathPattern, which kubegate does not expand)"
                    )
                return (
                    f"its source ExternalArtifact {key} is not produced by an ArtifactGenerator "
                    "this revision renders (it exists only in the cluster)"
                )
            gen, artifact = found
            outcome = self._build(gen, artifact, key, settled, resolve)
            if outcome is None:
                return None
            self.built[key] = outcome
        built = self.built[key]
        if isinstance(built, str):
            return built
        tree, files = built
        self.used[ks.key] = (key, files)
        return tree

    def _build(
        self,
        gen: Generator,
        artifact: OutputArtifact,
        key: str,
        settled: bool,
        resolve: SourceResolver,
    ) -> tuple[Path, dict[str, str]] | str | None:
        where = gen.origin.where
        head = f"its source ExternalArtifact {key} (ArtifactGenerator {gen.key}" + (
            f", {where})" if where else ")"
        )
        if gen.invalid is not None:
            return f"{head} is invalid: {gen.invalid}"
        trees: dict[str, SourceTree] = {}
        for ref in gen.sources:
            found = resolve(ref, settled)
            if found is None:
                return None
            if isinstance(found, str):
                return f"{head}: source {ref.alias} ({ref.kind} {ref.key}) {found}"
            trees[ref.alias] = found
        dest = Path(tempfile.mkdtemp(prefix="artifact-", dir=self.base))
        try:
            files = build_artifact(artifact, trees, dest, self.limits)
        except CopyError as exc:
            shutil.rmtree(dest, ignore_errors=True)
            return f"{head} cannot be built: {exc.message}"
        _logger.info("ExternalArtifact %s: built from ArtifactGenerator %s", key, gen.key)
        return dest, files

    def relabel(self, objects: Sequence[RenderedObject]) -> list[RenderedObject]:
        """Objects built from an artifact, their files named after their originals."""
        if not self.used:
            return list(objects)
        out = []
        for obj in objects:
            found = self.used.get(obj.kustomization) if obj.kustomization else None
            if found is None:
                out.append(obj)
                continue
            key, files = found
            locator = MappedLocator(obj.locator, files, f"ExternalArtifact {key}:")
            out.append(replace(obj, locator=locator))
        return out
