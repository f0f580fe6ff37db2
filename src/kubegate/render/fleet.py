"""Render a revision as Flux would: the mode choice and the Flux Kustomization walker.

:func:`render` is the render stage's entry point (called by ``kubegate.cli.images`` and later
``kubegate.scan``). Mode (docs/images.md): when Flux Kustomizations are found under the path,
only what they render counts: each is built once (keyed by namespace/name), the Kustomizations
they apply are followed, and their ``postBuild`` variables come from ConfigMaps/Secrets the same
revision renders (plus ``--var`` values for those that live only in the cluster). Otherwise a
directory with a kustomization file is built with kustomize, and anything else is read as plain
YAML. HelmReleases and Kustomizations whose source is not the scanned tree are listed as not seen.
"""

from __future__ import annotations

import logging
import posixpath
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kubegate.errors import RenderError, UsageError
from kubegate.models import NotSeen, Origin, Problem, RemoteBase
from kubegate.render.fluxks import (
    FLUX_GROUP,
    SCANNED_SOURCE_KINDS,
    FluxKustomization,
    PreparedBuild,
    is_flux_kustomization,
    ks_where,
    kustomization_file,
    parse_kustomization,
    prepare_build,
    prepare_plain_build,
    resolve_path,
)
from kubegate.render.kustomize import BUILD_WORKERS, Kustomize, find_kustomize
from kubegate.render.output import objects_from_build, split_documents, to_object
from kubegate.render.plain import files_mentioning, scan_files, scan_plain
from kubegate.render.provenance import BuildContext, KustomizeLocator
from kubegate.render.remote import RemoteOptions, fetch_all, remote_files
from kubegate.render.result import NodeLocator, RenderedObject, RenderResult
from kubegate.render.substitute import (
    DISABLE_KEY,
    UndefinedVariableError,
    check_names,
    data_of,
    is_disabled,
    substitute_text,
)
from kubegate.render.workspace import Workspace, workspace
from kubegate.render.yamlfile import read_text

_logger = logging.getLogger(__name__)

HELM_GROUP = "helm.toolkit.fluxcd.io"
DEFAULT_NAMESPACE = "default"


def _where(origin: Origin) -> str | None:
    if origin.file is None:
        return None
    return f"{origin.file}:{origin.line}" if origin.line else origin.file


def _problem(exc: RenderError, fallback: Origin) -> Problem:
    if exc.where:
        file, _, line = exc.where.partition(":")
        if line.isdigit():
            return Problem(exc.message, Origin(file, int(line)))
        if fallback.file is None or exc.where != fallback.file:
            return Problem(f"{exc.where}: {exc.message}", fallback)
    return Problem(exc.message, fallback)


class _Located(RenderError):
    """A render error already tied to an :class:`Origin`."""

    def __init__(self, message: str, origin: Origin) -> None:
        super().__init__(message)
        self.origin = origin


def exc_problem(exc: RenderError) -> Problem:
    """A problem from an error raised while materialising an object."""
    if isinstance(exc, _Located):
        return Problem(exc.message, exc.origin)
    return _problem(exc, Origin(None))


def _in_kustomization(exc: RenderError, ks: FluxKustomization) -> _Located:
    """Name the Kustomization in a build error; keep the file:line the error points at."""
    problem = _problem(exc, ks.origin)
    return _Located(f"Kustomization {ks.key}: {problem.message}", problem.origin)


@dataclass(slots=True)
class _Pending:
    ks: FluxKustomization
    context: BuildContext
    #: The YAML text of each object of the build (parsed once, after substitution).
    texts: list[str]
    #: Remote resources fetched for this build (``--allow-remote-bases``).
    remote: tuple[RemoteBase, ...] = ()


@dataclass(slots=True)
class _Walk:
    """State of one walk over a fleet's Flux Kustomizations."""

    workspace: Workspace
    kustomize: Kustomize
    cli_vars: Mapping[str, str]
    objects: list[RenderedObject] = field(default_factory=list)
    not_seen: list[NotSeen] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    seen: dict[str, FluxKustomization] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    #: (kind, namespace, name) -> data of ConfigMaps/Secrets rendered so far.
    cluster_data: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    queue: list[FluxKustomization] = field(default_factory=list)
    #: ConfigMaps/Secrets rendered SOPS-encrypted: their values exist only in the cluster.
    encrypted: set[tuple[str, str, str]] = field(default_factory=set)
    #: The source root itself: provenance only reads it, and it outlives the workspace.
    source_root: Path = Path()
    remote: RemoteOptions = field(default_factory=RemoteOptions)
    fetched: list[RemoteBase] = field(default_factory=list)
    #: Pairs of origins that define one Kustomization key twice.
    duplicates: list[tuple[str, Origin, Origin]] = field(default_factory=list)

    def build_round(self, batch: Sequence[FluxKustomization]) -> list[_Pending]:
        todo = []
        for ks in batch:
            if ks.source_kind not in SCANNED_SOURCE_KINDS:
                self.not_seen.append(
                    NotSeen(
                        "Kustomization",
                        ks.namespace,
                        ks.name,
                        ks.origin,
                        f"its source {ks.source_kind}/{ks.source_name} is not the scanned source",
                    )
                )
                continue
            todo.append(ks)
        workers = max(1, min(len(todo), BUILD_WORKERS))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(self._build_one, todo))
        pending = []
        for ks, result in zip(todo, results, strict=True):
            if isinstance(result, RenderError):
                self.problems.append(exc_problem(result))
                self.children.setdefault(ks.key, [])
            else:
                self.fetched.extend(result.remote)
                pending.append(result)
        return pending

    def _build_one(self, ks: FluxKustomization) -> _Pending | RenderError:
        try:
            _, rel = resolve_path(self.source_root, ks.path, ks_where(ks))
            farm = self.workspace.farm(rel)
        except RenderError as exc:
            return _in_kustomization(exc, ks)
        try:
            prepared: PreparedBuild = prepare_build(self.source_root, farm, rel, ks)
            remote = (
                fetch_all(prepared.remote, self.workspace, farm, self.remote)
                if prepared.remote
                else []
            )
            output = self.kustomize.build(
                prepared.directory,
                ks_where(ks),
                trees=(farm, self.source_root),
                deadline=self.remote.deadline,
            )
            context = BuildContext(
                pristine=self.source_root,
                build_dir=prepared.rel,
                flux_images=prepared.flux_images,
                flux_patches=prepared.flux_patches,
                remote_files=remote_files(remote),
            )
            return _Pending(ks, context, split_documents(output), tuple(remote))
        except RenderError as exc:
            return _in_kustomization(exc, ks)
        finally:
            shutil.rmtree(farm, ignore_errors=True)

    def variables(self, ks: FluxKustomization, force: bool) -> dict[str, str] | None:
        """Variables of ``ks``; None while a substituteFrom source may still be rendered."""
        post = ks.post_build or {}
        values: dict[str, str] = dict(self.cli_vars)
        for ref in post.get("substituteFrom") or []:
            if not isinstance(ref, dict):
                continue
            kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
            data = self.cluster_data.get((kind, ks.namespace, name))
            if data is not None:
                values.update(data)
                continue
            if not force:
                return None
            if ref.get("optional") or self.cli_vars:
                continue
            why = (
                "is SOPS-encrypted"
                if (kind, ks.namespace, name) in self.encrypted
                else "is not rendered by this revision"
            )
            raise RenderError(
                f"substituteFrom {kind} {ks.namespace}/{name} {why} "
                f"(Kustomization {ks.key}); pass its values with --var or --var-file",
                where=_where(ks.origin),
            )
        substitute = post.get("substitute")
        if isinstance(substitute, dict):
            for key, value in substitute.items():
                values[str(key)] = ("" if value is None else str(value)).replace("\n", "")
        check_names(values, _where(ks.origin) or ks.key)
        return values

    def finish(self, item: _Pending, variables: Mapping[str, str]) -> None:
        ks = item.ks
        kids = self.children.setdefault(ks.key, [])
        substitute = ks.post_build is not None and bool(variables)
        for text in item.texts:
            try:
                rendered = self._materialize(item, text, variables if substitute else None)
            except RenderError as exc:
                self.problems.append(exc_problem(exc))
                continue
            if rendered is None:
                continue
            self.objects.append(rendered)
            self.index(rendered)
            if is_flux_kustomization(rendered.value):
                child = self._child(rendered)
                kids.append(child.key)
                first = self.seen.get(child.key)
                if first is None:
                    self.seen[child.key] = child
                    self.queue.append(child)
                elif first.origin != child.origin:
                    self.duplicates.append((child.key, first.origin, child.origin))

    def _materialize(
        self, item: _Pending, text: str, variables: Mapping[str, str] | None
    ) -> RenderedObject | None:
        """One object of a build, substituted when its Kustomization has variables."""
        ks = item.ks
        if variables is None or "$" not in text:
            return to_object(text, item.context, ks.key)
        if DISABLE_KEY in text:
            # Possibly opted out: decide on the object as built, before any substitution.
            obj = to_object(text, item.context, ks.key)
            if obj is None or is_disabled(obj.value):
                return obj
        try:
            expanded = substitute_text(text, variables)
        except UndefinedVariableError as exc:
            obj = to_object(text, item.context, ks.key)
            label = f"{obj.kind} {_ns_name(obj)}" if obj is not None else "an object"
            raise _Located(
                f"postBuild: variable {exc.variable!r} is not defined and has no default in "
                f"{label} (Kustomization {ks.key})",
                self._variable_origin(obj, exc.variable) if obj else ks.origin,
            ) from exc
        try:
            return to_object(expanded, item.context, ks.key)
        except RenderError as exc:
            obj = to_object(text, item.context, ks.key)
            origin = obj.locator.document() if obj is not None else ks.origin
            raise _Located(f"after postBuild substitution: {exc.message}", origin) from exc

    def _variable_origin(self, obj: RenderedObject, variable: str) -> Origin:
        """The line of the object's file that uses ``variable`` (else the document's line)."""
        doc = obj.locator.document()
        if doc.file is None:
            return doc
        try:
            lines = read_text(self.source_root / doc.file, doc.file).splitlines()
        except RenderError:
            return doc
        needle = "${" + variable
        start = (doc.line or 1) - 1
        for number in range(start, len(lines)):
            if needle in lines[number]:
                return Origin(doc.file, number + 1)
        return doc

    def index(self, obj: RenderedObject) -> None:
        if obj.kind in ("ConfigMap", "Secret") and str(obj.value.get("apiVersion")) == "v1":
            key = (obj.kind, obj.namespace or DEFAULT_NAMESPACE, obj.name)
            if "sops" in obj.value:
                # kustomize-controller decrypts these with a key only the cluster has.
                self.encrypted.add(key)
                return
            try:
                self.cluster_data[key] = data_of(obj.value, obj.name)
            except RenderError as exc:
                self.problems.append(_problem(exc, obj.locator.document()))

    def _child(self, obj: RenderedObject) -> FluxKustomization:
        origin = obj.locator.document()
        node = None
        if isinstance(obj.locator, KustomizeLocator) and origin.file is not None:
            docs = obj.locator.context.documents(origin.file) or []
            node = next((d.node for d in docs if d.line == origin.line), None)
        return parse_kustomization(obj.value, origin, node, DEFAULT_NAMESPACE)

    def run(self, roots: Sequence[FluxKustomization]) -> None:
        for root in roots:
            first = self.seen.get(root.key)
            if first is None:
                self.seen[root.key] = root
                self.queue.append(root)
            elif first.origin != root.origin:
                self.duplicates.append((root.key, first.origin, root.origin))
        # A cluster applies one object per namespace/name: which of two definitions wins is
        # not in the revision, and the other one's images would never be judged. Two clusters'
        # bootstrap Kustomizations sharing a name are the usual case: --path picks one.
        self.refuse_duplicates()
        waiting: list[_Pending] = []
        while self.queue or waiting:
            if self.queue:
                batch, self.queue = self.queue, []
                waiting.extend(self.build_round(batch))
            progressed = True
            while progressed:
                progressed = False
                for item in list(waiting):
                    try:
                        variables = self.variables(item.ks, force=False)
                    except RenderError as exc:
                        waiting.remove(item)
                        self.problems.append(_problem(exc, item.ks.origin))
                        progressed = True
                        continue
                    if variables is None:
                        continue
                    waiting.remove(item)
                    self.finish(item, variables)
                    progressed = True
            if not self.queue and waiting:
                # Nothing else can render the missing ConfigMaps/Secrets: decide now.
                item = waiting.pop(0)
                try:
                    self.finish(item, self.variables(item.ks, force=True) or {})
                except RenderError as exc:
                    self.problems.append(_problem(exc, item.ks.origin))
                    self.children.setdefault(item.ks.key, [])
        self.refuse_duplicates()

    def refuse_duplicates(self) -> None:
        """Two definitions of one Kustomization: the whole render is not proven (exit 2)."""
        if not self.duplicates:
            return
        key, first, second = self.duplicates[0]
        raise RenderError(
            f"Kustomization {key} is defined twice, in {_where(first)} and {_where(second)}: "
            "a cluster applies only one of them, so what it would run is not proven "
            "(use --path to choose one cluster's directory)",
            where=_where(first),
        )


def _ns_name(obj: RenderedObject) -> str:
    return f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name


def _base(ks: FluxKustomization) -> str:
    return posixpath.normpath(ks.path.strip().lstrip("/") or ".")


def _under(base: str, file: str) -> bool:
    return base == "." or file == base or file.startswith(base + "/")


def _covers(ks: FluxKustomization, file: str | None) -> bool:
    return file is not None and _under(_base(ks), file)


def _roots(scanned: Sequence[FluxKustomization]) -> list[FluxKustomization]:
    # A Kustomization in a file that another one's path covers is applied by that one; only the
    # uncovered ones (and the bootstrap one that covers itself) start the walk.
    # Kustomizations of other sources (OCI, Bucket) do not apply files of this tree.
    local = [ks for ks in scanned if ks.source_kind in SCANNED_SOURCE_KINDS]
    roots = [
        ks
        for ks in scanned
        if not any(other is not ks and _covers(other, ks.origin.file) for other in local)
    ]
    # Kustomizations that all cover one another: none is the root, so all are.
    return roots or list(scanned)


def _descendants(children: Mapping[str, list[str]], start: str) -> set[str]:
    found, stack = {start}, [start]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _split_helm(objects: Sequence[RenderedObject]) -> tuple[list[RenderedObject], list[NotSeen]]:
    kept, not_seen = [], []
    for obj in objects:
        group = str(obj.value.get("apiVersion", "")).partition("/")[0]
        if obj.kind == "HelmRelease" and group == HELM_GROUP:
            not_seen.append(
                NotSeen(
                    "HelmRelease",
                    obj.namespace,
                    obj.name,
                    obj.locator.document(),
                    "charts are not rendered yet",
                )
            )
        else:
            kept.append(obj)
    return kept, not_seen


def render(
    root: Path,
    path: str = "",
    *,
    kustomization: str | None = None,
    variables: Mapping[str, str] | None = None,
    allow_remote_bases: bool = False,
    deadline: float | None = None,
) -> RenderResult:
    """Render ``path`` (source-relative, already validated) of the revision at ``root``.

    Never modifies ``root``: Flux's edits happen in a private copy. Raises RenderError only when
    nothing can be rendered at all (no kustomize) or the revision is ambiguous (one Flux
    Kustomization defined twice); everything else is collected as problems. ``deadline``
    (``time.monotonic()``) bounds every kustomize build; remote resources are refused unless
    ``allow_remote_bases``.
    """
    remote = RemoteOptions(allow=allow_remote_bases, deadline=deadline)
    root = root.resolve()
    directory = root / path if path else root
    flux_files, other_files = files_mentioning(directory, FLUX_GROUP)
    scan = scan_files(root, flux_files, quiet=True)
    scanned = [
        parse_kustomization(
            obj.value,
            obj.locator.document(),
            obj.locator.node if isinstance(obj.locator, NodeLocator) else None,
            DEFAULT_NAMESPACE,
        )
        for obj in scan.objects
        if is_flux_kustomization(obj.value)
    ]
    if kustomization is not None and not scanned:
        raise UsageError(
            f"--kustomization {kustomization}: no Flux Kustomization found under the path"
        )
    if scanned:
        # Objects beside the root Kustomizations that no Kustomization covers are applied with
        # them (by `flux bootstrap` or kubectl): their ConfigMaps/Secrets feed substituteFrom.
        bases = [_base(ks) for ks in scanned if ks.source_kind in SCANNED_SOURCE_KINDS]
        uncovered = [
            file
            for file in [*flux_files, *other_files]
            if not any(_under(base, file.relative_to(root).as_posix()) for base in bases)
        ]
        loose = scan_files(root, uncovered, quiet=True).objects
        return _render_fleet(root, scanned, kustomization, variables or {}, loose, remote)
    if kustomization_file(directory) is not None:
        return _render_kustomize(root, path, remote)
    plain = scan_plain(root, directory)
    kept, not_seen = _split_helm(plain.objects)
    return RenderResult(tuple(kept), tuple(not_seen), plain.problems)


def _render_kustomize(root: Path, path: str, remote: RemoteOptions) -> RenderResult:
    kustomize = find_kustomize()
    with workspace(root) as ws:
        try:
            farm = ws.farm(path)
            prepared = prepare_plain_build(root, farm, path)
            fetched = fetch_all(prepared.remote, ws, farm, remote) if prepared.remote else []
            output = kustomize.build(
                prepared.directory, path or ".", trees=(farm, root), deadline=remote.deadline
            )
        except RenderError as exc:
            return RenderResult((), (), (_problem(exc, Origin(path or ".")),))
        # Provenance reads the source root (never written), which outlives the workspace.
        context = BuildContext(pristine=root, build_dir=path, remote_files=remote_files(fetched))
        objects = objects_from_build(output, context, None)
        kept, not_seen = _split_helm(objects)
        return RenderResult(tuple(kept), tuple(not_seen), (), tuple(fetched))


def _render_fleet(
    root: Path,
    scanned: Sequence[FluxKustomization],
    selection: str | None,
    cli_vars: Mapping[str, str],
    loose: Sequence[RenderedObject],
    remote: RemoteOptions,
) -> RenderResult:
    kustomize = find_kustomize()
    with workspace(root) as ws:
        walk = _Walk(
            workspace=ws, kustomize=kustomize, cli_vars=cli_vars, source_root=root, remote=remote
        )
        for obj in loose:
            walk.index(obj)
        walk.run(_roots(scanned))
        objects = walk.objects
        not_seen = walk.not_seen
        if selection is not None:
            if selection not in walk.seen:
                known = ", ".join(sorted(walk.seen)) or "none"
                raise UsageError(
                    f"--kustomization {selection}: not rendered by this revision (found: {known})"
                )
            keep = _descendants(walk.children, selection)
            objects = [o for o in objects if o.kustomization in keep]
            not_seen = [n for n in not_seen if f"{n.namespace}/{n.name}" in keep]
        kept, helm = _split_helm(objects)
        return RenderResult(
            tuple(kept), tuple(not_seen + helm), tuple(walk.problems), tuple(walk.fetched)
        )
