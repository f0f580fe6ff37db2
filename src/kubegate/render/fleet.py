"""Render a revision as Flux would: the mode choice and the Flux Kustomization walker.

:func:`render` is the render stage's entry point (called by ``kubegate.scan``). Mode
(docs/images.md): when Flux Kustomizations are found under the path, only what they render
counts, cluster by cluster (``clusters.py``): each cluster gets its own walk, in which each
Kustomization is built once (keyed by namespace/name), the Kustomizations it applies are followed,
and their ``postBuild`` variables come from ConfigMaps/Secrets the same cluster renders (plus
``--var`` values for those that live only in the cluster). A Kustomization reads the scanned
source, a tree the user supplied for its GitRepository (``--source``), or is listed as not seen.
Otherwise a directory with a kustomization file is built with kustomize, and anything else is
read as plain YAML. In every mode the HelmReleases found (per cluster) are rendered through
helm (``helm/stage.py``); Flux Operator objects are listed as not seen.
"""

from __future__ import annotations

import logging
import posixpath
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from kubegate.errors import RenderError, UsageError
from kubegate.models import NotSeen, Origin, Problem, RemoteBase
from kubegate.render.artgen import (
    EXTERNAL_ARTIFACT_KIND,
    ArtifactGenerators,
    Resolved,
    SourceRef,
    SourceTree,
)
from kubegate.render.buildcache import RenderCache, default_cache
from kubegate.render.clusters import (
    Cluster,
    GitSource,
    base_of,
    find_clusters,
    git_source,
    names_line,
    select_clusters,
    source_key,
    under,
)
from kubegate.render.fetch import HelmOptions, SourceFetcher
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
from kubegate.render.helm.release import ObjectRef, is_helm_release
from kubegate.render.helm.stage import HelmContext, HelmOutcome, render_releases
from kubegate.render.kustomize import BUILD_WORKERS, Kustomize, find_kustomize
from kubegate.render.ocisource import OCI_KIND, OciSources
from kubegate.render.output import objects_from_build, split_documents, to_object
from kubegate.render.plain import files_mentioning, scan_files, scan_plain
from kubegate.render.provenance import BuildContext, KustomizeLocator
from kubegate.render.remote import RemoteOptions, fetch_all, remote_files
from kubegate.render.result import NodeLocator, RenderedObject, RenderResult
from kubegate.render.substitute import (
    DISABLE_KEY,
    UndefinedVariableError,
    check_names,
    is_disabled,
    substitute_text,
    variables_of,
)
from kubegate.render.workspace import Workspace, workspace
from kubegate.render.yamlfile import read_text
from kubegate.source.ignore import IgnoreRules
from kubegate.source.location import url_without_credentials

_logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "default"


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


#: A problem and the ``namespace/name`` of the Kustomization it belongs to (None: the cluster's).
_Owned = tuple[str | None, Problem]


@dataclass(slots=True)
class _Walk:
    """State of one walk over the Flux Kustomizations of one cluster."""

    workspace: Workspace
    kustomize: Kustomize
    cli_vars: Mapping[str, str]
    #: Source-relative directory of the cluster (None: the one implicit cluster).
    cluster: str | None = None
    #: ``namespace/name`` of the GitRepositories that are the scanned source.
    scanned_sources: frozenset[str] = frozenset()
    #: Other GitRepositories supplied with ``--source`` (``namespace/name`` -> tree).
    supplied: Mapping[str, Path] = field(default_factory=dict)
    #: Directories of the scanned source that an unsupplied ``spec.include`` would fill.
    missing_includes: Mapping[str, str] = field(default_factory=dict)
    objects: list[RenderedObject] = field(default_factory=list)
    not_seen: list[NotSeen] = field(default_factory=list)
    problems: list[_Owned] = field(default_factory=list)
    seen: dict[str, FluxKustomization] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    #: (kind, namespace, name) -> data of ConfigMaps/Secrets rendered so far.
    cluster_data: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    #: (kind, namespace, name) of a Secret -> its data keys that are not base64 UTF-8 text.
    unreadable: dict[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)
    queue: list[FluxKustomization] = field(default_factory=list)
    #: ConfigMaps/Secrets rendered SOPS-encrypted: their values exist only in the cluster.
    encrypted: set[tuple[str, str, str]] = field(default_factory=set)
    #: GitRepositories the cluster renders (``namespace/name`` -> definition).
    git_repos: dict[str, GitSource] = field(default_factory=dict)
    #: Kustomizations whose GitRepository may still be rendered by another Kustomization.
    deferred: list[FluxKustomization] = field(default_factory=list)
    settled: set[str] = field(default_factory=set)
    #: The source root itself: provenance reads it lazily, and it outlives the workspace (a
    #: mirror does not), with ``spec.include`` directories read from their own trees.
    pristine: Path = Path()
    grafts: Mapping[str, Path] = field(default_factory=dict)
    #: kustomize output by (tree, built directory, kustomization text): shared by the clusters
    #: of one render, which often build the same path with the same Flux spec.
    build_cache: dict[tuple[str, str, str], str] = field(default_factory=dict)
    #: Outputs kept across runs (buildcache.py); None: off.
    disk_cache: RenderCache | None = None
    remote: RemoteOptions = field(default_factory=RemoteOptions)
    fetched: list[RemoteBase] = field(default_factory=list)
    #: Pairs of origins that define one Kustomization key twice.
    duplicates: list[tuple[str, Origin, Origin]] = field(default_factory=list)
    #: OCIRepositories the cluster renders and the artifacts pulled from them (ocisource.py).
    oci: OciSources | None = None
    #: ArtifactGenerators the cluster renders and the ExternalArtifacts built (artgen.py).
    artgen: ArtifactGenerators | None = None

    @property
    def source_root(self) -> Path:
        """The tree the scanned source renders from (the source root, or a filtered mirror)."""
        return self.workspace.root

    def problem(self, owner: str | None, problem: Problem) -> None:
        self.problems.append((owner, problem))

    def _not_seen(self, ks: FluxKustomization, reason: str) -> None:
        self.not_seen.append(
            NotSeen("Kustomization", ks.namespace, ks.name, ks.origin, reason, self.cluster)
        )
        self.children.setdefault(ks.key, [])

    def tree_of(self, ks: FluxKustomization) -> Path | None:
        """The tree ``ks`` renders from; None when it is not seen or must wait (recorded)."""
        if ks.source_kind == OCI_KIND and self.oci is not None:
            found = self.oci.tree(ks, source_key(ks), ks.key in self.settled)
            if found is None:
                self.deferred.append(ks)
            elif isinstance(found, str):
                self._not_seen(ks, found)
            return found if isinstance(found, Path) else None
        if ks.source_kind == EXTERNAL_ARTIFACT_KIND and self.artgen is not None:
            built = self.artgen.tree(
                ks, source_key(ks), ks.key in self.settled, self._artifact_source
            )
            if built is None:
                self.deferred.append(ks)
            elif isinstance(built, str):
                self._not_seen(ks, built)
            return built if isinstance(built, Path) else None
        if ks.source_kind not in SCANNED_SOURCE_KINDS:
            self._not_seen(
                ks, f"its source {ks.source_kind}/{ks.source_name} is not the scanned source"
            )
            return None
        key = source_key(ks)
        if key in self.supplied:
            return self.supplied[key]
        if key in self.scanned_sources:
            return self._scanned(ks)
        repo = self.git_repos.get(key)
        if repo is not None:
            # A URL found in the judged revision is never fetched (DESIGN.md invariant 5).
            where = repo.origin.where
            self._not_seen(
                ks,
                f"its source GitRepository {key} ({url_without_credentials(repo.url)}"
                f"{', ' + where if where else ''}) is another repository; "
                f"supply it with --source {key}=DIR|GIT-URL[@REF]",
            )
            return None
        if ks.key not in self.settled:
            self.deferred.append(ks)
            return None
        # Not defined in the revision (typically flux-system, made by bootstrap): the scanned one.
        return self._scanned(ks)

    def _artifact_source(self, ref: SourceRef, settled: bool) -> Resolved:
        """An ArtifactGenerator source's files, as ``tree_of`` finds a Kustomization's: the
        rule for a GitRepository is the same; an OCIRepository is pulled (ocisource.py)."""
        if ref.kind == "GitRepository":
            if ref.key in self.supplied:
                return SourceTree(self.supplied[ref.key], _same_name)
            repo = self.git_repos.get(ref.key)
            if ref.key in self.scanned_sources or (repo is None and settled):
                if self.missing_includes:
                    # A copy of the tree would silently lack the include nobody supplied.
                    directory, key = next(iter(self.missing_includes.items()))
                    return (
                        f"includes GitRepository {key} at {directory}; supply it with "
                        f"--source {key}=DIR|GIT-URL[@REF]"
                    )
                return SourceTree(self.source_root, _same_name)
            if repo is None:
                return None
            return (
                f"is another repository ({url_without_credentials(repo.url)}); supply it with "
                f"--source {ref.key}=DIR|GIT-URL[@REF]"
            )
        if ref.kind == OCI_KIND and self.oci is not None:
            pulled = self.oci.resolve(ref.key, settled)
            if pulled is None or isinstance(pulled, str):
                return pulled
            tree, prefix = pulled
            return SourceTree(tree, lambda rel: f"{prefix}/{rel}")
        return f"is a {ref.kind or 'source of no kind'}, which kubegate does not read"

    def chart_tree(self, ref: ObjectRef, path: str) -> Path | str:
        """The tree a HelmRelease's GitRepository chart is read from, or why it is not seen.

        The same rule as Kustomizations (``tree_of``), decided after the walk: supplied with
        ``--source``, the cluster's scanned source, another repository defined in the
        revision (not seen), else not defined here (typically ``flux-system``): the scanned one.
        """
        key = ref.key
        if key in self.supplied:
            return self.supplied[key]
        repo = self.git_repos.get(key)
        if key not in self.scanned_sources and repo is not None:
            where = repo.origin.where
            return (
                f"its chart's source GitRepository {key} ({url_without_credentials(repo.url)}"
                f"{', ' + where if where else ''}) is another repository; "
                f"supply it with --source {key}=DIR|GIT-URL[@REF]"
            )
        for directory, include in self.missing_includes.items():
            if under(directory, path):
                return (
                    f"its chart path {path} is GitRepository {include}, included at "
                    f"{directory}; supply it with --source {include}=DIR|GIT-URL[@REF]"
                )
        return self.source_root

    def chart_label(self, ref: ObjectRef, path: str) -> str:
        """ChartInfo.source of a chart directory: its path, prefixed for a supplied source."""
        return f"{ref.key}:{path}" if ref.key in self.supplied else path

    def _scanned(self, ks: FluxKustomization) -> Path | None:
        base = base_of(ks)
        for directory, key in self.missing_includes.items():
            if under(directory, base):
                self._not_seen(
                    ks,
                    f"its path {base} is GitRepository {key}, included at {directory}; supply "
                    f"it with --source {key}=DIR|GIT-URL[@REF]",
                )
                return None
        return self.source_root

    def build_round(self, batch: Sequence[FluxKustomization]) -> list[_Pending]:
        todo: list[tuple[FluxKustomization, Path]] = []
        for ks in batch:
            tree = self.tree_of(ks)
            if tree is not None:
                todo.append((ks, tree))
        workers = max(1, min(len(todo), BUILD_WORKERS))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(self._build_one, todo))
        pending = []
        for (ks, _), result in zip(todo, results, strict=True):
            if isinstance(result, RenderError):
                self.problem(ks.key, exc_problem(result))
                self.children.setdefault(ks.key, [])
            else:
                self.fetched.extend(result.remote)
                pending.append(result)
        return pending

    def _build_one(self, item: tuple[FluxKustomization, Path]) -> _Pending | RenderError:
        ks, tree = item
        space = self.workspace if tree == self.source_root else replace(self.workspace, root=tree)
        try:
            _, rel = resolve_path(tree, ks.path, ks_where(ks))
            farm = space.farm(rel)
        except RenderError as exc:
            return _in_kustomization(exc, ks)
        try:
            prepared: PreparedBuild = prepare_build(tree, farm, rel, ks)
            remote = (
                fetch_all(prepared.remote, self.workspace, farm, self.remote)
                if prepared.remote
                else []
            )
            written = kustomization_file(prepared.directory)
            text = written.read_text(encoding="utf-8") if written is not None else ""
            key = (str(tree), prepared.rel, text)
            # Fetched remote resources are not in the key: such builds are never shared.
            output = None if remote else self.build_cache.get(key)
            entry = None
            if output is None and self.disk_cache is not None:
                # None for a build naming remote resources (buildcache.py): never cached.
                entry = self.disk_cache.entry(tree, prepared, text, self.kustomize)
                output = entry.load() if entry is not None else None
                if output is not None:
                    self.build_cache[key] = output
            if output is None:
                output = self.kustomize.build(
                    prepared.directory,
                    ks_where(ks),
                    trees=(farm, tree),
                    deadline=self.remote.deadline,
                )
                if not remote:
                    self.build_cache[key] = output
                if entry is not None:
                    entry.save(output, (farm, tree, self.workspace.base))
            scanned = tree == self.source_root
            context = BuildContext(
                pristine=self.pristine if scanned else tree,
                build_dir=prepared.rel,
                flux_images=prepared.flux_images,
                flux_patches=prepared.flux_patches,
                grafts=self.grafts if scanned else {},
                remote_files=remote_files(remote),
            )
            return _Pending(ks, context, split_documents(output), tuple(remote))
        except RenderError as exc:
            return _in_kustomization(exc, ks)
        finally:
            shutil.rmtree(farm, ignore_errors=True)

    def _sources(self, ks: FluxKustomization) -> list[tuple[str, str, bool]]:
        post = ks.post_build or {}
        return [
            (str(ref.get("kind", "")), str(ref.get("name", "")), bool(ref.get("optional")))
            for ref in post.get("substituteFrom") or []
            if isinstance(ref, dict)
        ]

    def variables(self, ks: FluxKustomization, force: bool) -> dict[str, str] | None:
        """Variables of ``ks``; None while a substituteFrom source may still be rendered."""
        post = ks.post_build or {}
        values: dict[str, str] = dict(self.cli_vars)
        for kind, name, optional in self._sources(ks):
            data = self.cluster_data.get((kind, ks.namespace, name))
            if data is not None:
                values.update(data)
                continue
            if not force:
                return None
            if optional or self.cli_vars:
                continue
            why = (
                "is SOPS-encrypted"
                if (kind, ks.namespace, name) in self.encrypted
                else "is not rendered by this revision"
            )
            raise RenderError(
                f"substituteFrom {kind} {ks.namespace}/{name} {why} "
                f"(Kustomization {ks.key}); pass its values with --var or --var-file",
                where=ks.origin.where,
            )
        substitute = post.get("substitute")
        if isinstance(substitute, dict):
            for key, value in substitute.items():
                values[str(key)] = ("" if value is None else str(value)).replace("\n", "")
        check_names(values, ks.origin.where or ks.key)
        return values

    def _unreadable_source(self, ks: FluxKustomization, variable: str) -> str | None:
        """The Secret whose non-text data key ``variable`` is, among the sources of ``ks``."""
        found = None
        for kind, name, _ in self._sources(ks):
            key = (kind, ks.namespace, name)
            if variable in self.unreadable.get(key, ()):
                found = f"{kind} {ks.namespace}/{name}"
            elif variable in self.cluster_data.get(key, {}):
                found = None
        return found

    def finish(self, item: _Pending, variables: Mapping[str, str]) -> None:
        ks = item.ks
        kids = self.children.setdefault(ks.key, [])
        substitute = ks.post_build is not None and bool(variables)
        for text in item.texts:
            try:
                rendered = self._materialize(item, text, variables if substitute else None)
            except RenderError as exc:
                self.problem(ks.key, exc_problem(exc))
                continue
            if rendered is None:
                continue
            if self.cluster is not None:
                rendered = replace(rendered, cluster=self.cluster)
            self.objects.append(rendered)
            self.index(rendered, ks.key)
            if is_flux_kustomization(rendered.value):
                child = self._child(rendered)
                kids.append(child.key)
                self.add(child)

    def add(self, ks: FluxKustomization) -> None:
        """Queue ``ks`` unless it was met already; two definitions of one name are an error."""
        first = self.seen.get(ks.key)
        if first is None:
            self.seen[ks.key] = ks
            self.queue.append(ks)
            return
        if first.origin == ks.origin:
            # The same object reached twice (two Kustomizations' paths cover its file).
            return
        # A cluster applies one object per namespace/name: which of two definitions wins is
        # not in the revision, and the other one's images would never be judged.
        self.duplicates.append((ks.key, first.origin, ks.origin))

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
            secret = self._unreadable_source(ks, exc.variable)
            why = (
                f"comes from {secret}, whose data is not base64 UTF-8 text"
                if secret is not None
                else "is not defined and has no default"
            )
            raise _Located(
                f"postBuild: variable {exc.variable!r} {why} in {label} (Kustomization {ks.key})",
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
        pristine = (
            obj.locator.context.pristine
            if isinstance(obj.locator, KustomizeLocator)
            else self.source_root
        )
        try:
            lines = read_text(pristine / doc.file, doc.file).splitlines()
        except RenderError:
            return doc
        needle = "${" + variable
        start = (doc.line or 1) - 1
        for number in range(start, len(lines)):
            if needle in lines[number]:
                return Origin(doc.file, number + 1)
        return doc

    def index(self, obj: RenderedObject, owner: str | None = None) -> None:
        """Remember what later Kustomizations may read: ConfigMaps, Secrets, GitRepositories,
        OCIRepositories."""
        if self.oci is not None and self.oci.index(
            obj.value, obj.locator.document(), DEFAULT_NAMESPACE
        ):
            return
        if self.artgen is not None and self.artgen.index(
            obj.value, obj.locator.document(), DEFAULT_NAMESPACE
        ):
            return
        repo = git_source(obj.value, obj.locator.document(), DEFAULT_NAMESPACE)
        if repo is not None:
            self.git_repos.setdefault(repo.key, repo)
            return
        if obj.kind in ("ConfigMap", "Secret") and str(obj.value.get("apiVersion")) == "v1":
            key = (obj.kind, obj.namespace or DEFAULT_NAMESPACE, obj.name)
            if "sops" in obj.value:
                # kustomize-controller decrypts these with a key only the cluster has.
                self.encrypted.add(key)
                return
            values, unreadable = variables_of(obj.value)
            self.cluster_data[key] = values
            if unreadable:
                self.unreadable[key] = unreadable

    def _child(self, obj: RenderedObject) -> FluxKustomization:
        origin = obj.locator.document()
        node = None
        origins: tuple[Origin, ...] = ()
        if isinstance(obj.locator, KustomizeLocator):
            if origin.file is not None:
                docs = obj.locator.context.documents(origin.file) or []
                node = next((d.node for d in docs if d.line == origin.line), None)
            spec = obj.value.get("spec")
            images = spec.get("images") if isinstance(spec, dict) else None
            if isinstance(images, list):
                # An entry may come from a parent's patch: point at the patch, not the child.
                origins = tuple(
                    obj.locator.locate(("spec", "images", index)).origin
                    for index in range(len(images))
                )
        child = parse_kustomization(obj.value, origin, node, DEFAULT_NAMESPACE)
        return replace(child, image_origins=origins) if origins else child

    def _index_pending(self, waiting: Sequence[_Pending]) -> bool:
        """Index the ConfigMaps/Secrets of builds still waiting for variables, as built.

        A Kustomization may read variables from a ConfigMap it renders itself (the
        "cluster-settings" pattern): in the cluster that object exists from an earlier
        reconciliation. Returns whether anything new was found.
        """
        found = False
        for item in waiting:
            for text in item.texts:
                if "ConfigMap" not in text and "Secret" not in text:
                    continue
                obj = to_object(text, item.context, item.ks.key)
                if obj is None or obj.kind not in ("ConfigMap", "Secret"):
                    continue
                key = (obj.kind, obj.namespace or DEFAULT_NAMESPACE, obj.name)
                if key not in self.cluster_data and key not in self.encrypted:
                    self.index(obj)
                    found = True
        return found

    def _progress(self, waiting: list[_Pending]) -> None:
        progressed = True
        while progressed:
            progressed = False
            for item in list(waiting):
                try:
                    variables = self.variables(item.ks, force=False)
                except RenderError as exc:
                    waiting.remove(item)
                    self.problem(item.ks.key, _problem(exc, item.ks.origin))
                    progressed = True
                    continue
                if variables is None:
                    continue
                waiting.remove(item)
                self.finish(item, variables)
                progressed = True

    def run(self, roots: Sequence[FluxKustomization]) -> None:
        for root in roots:
            self.add(root)
        # Known before anything is built: refused at once (and again after the walk, for
        # duplicates met while walking).
        self.refuse_duplicates()
        waiting: list[_Pending] = []
        while self.queue or waiting or self.deferred:
            if self.queue:
                batch, self.queue = self.queue, []
                waiting.extend(self.build_round(batch))
            self._progress(waiting)
            if self.queue:
                continue
            if self.deferred:
                # Nothing else renders GitRepositories now: sources not defined are the scanned one.
                batch, self.deferred = self.deferred, []
                self.settled.update(ks.key for ks in batch)
                self.queue.extend(batch)
                continue
            if not waiting:
                break
            if self._index_pending(waiting):
                continue
            # Nothing else can render the missing ConfigMaps/Secrets: decide now.
            item = waiting.pop(0)
            try:
                self.finish(item, self.variables(item.ks, force=True) or {})
            except RenderError as exc:
                self.problem(item.ks.key, _problem(exc, item.ks.origin))
                self.children.setdefault(item.ks.key, [])
        self.refuse_duplicates()

    def refuse_duplicates(self) -> None:
        """Two definitions of one Kustomization: the whole render is not proven (exit 2)."""
        if not self.duplicates:
            return
        key, first, second = self.duplicates[0]
        cluster = f" in cluster {self.cluster}" if self.cluster else ""
        raise RenderError(
            f"Kustomization {key} is defined twice{cluster}, in {first.where} and "
            f"{second.where}: the cluster applies only one of them, so what it would run is "
            "not proven",
            where=first.where,
        )


def _same_name(rel: str) -> str:
    """Provenance name of a file of a Git tree: its path, as for Git content."""
    return rel


def _ns_name(obj: RenderedObject) -> str:
    return f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name


def _descendants(children: Mapping[str, list[str]], start: str) -> set[str]:
    found, stack = {start}, [start]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


#: Flux Operator (controlplaneio-fluxcd/flux-operator, ``fluxcd.controlplane.io/v1``) kinds whose
#: objects only the operator, in the cluster, turns into what runs.
_OPERATOR_GROUP = "fluxcd.controlplane.io"
_OPERATOR_REASONS = {
    "FluxInstance": "Flux Operator installs Flux and its sync from it in the cluster; "
    "not rendered (scan what spec.sync points at)",
    "ResourceSet": "Flux Operator generates its resources from inputs in the cluster; not rendered",
    "ResourceSetInputProvider": "Flux Operator fetches its inputs from an external service; "
    "not rendered",
}


def _unseen_reason(obj: RenderedObject) -> str | None:
    group = str(obj.value.get("apiVersion", "")).partition("/")[0]
    if group == _OPERATOR_GROUP:
        return _OPERATOR_REASONS.get(obj.kind)
    return None


def _split_helm(objects: Sequence[RenderedObject]) -> tuple[list[RenderedObject], list[NotSeen]]:
    """Objects kubegate can look into, and the others (Flux Operator) as not seen."""
    kept, not_seen = [], []
    for obj in objects:
        reason = _unseen_reason(obj)
        if reason is None:
            kept.append(obj)
            continue
        not_seen.append(
            NotSeen(
                obj.kind,
                obj.namespace,
                obj.name,
                obj.locator.document(),
                reason,
                obj.cluster,
            )
        )
    return kept, not_seen


def render(
    root: Path,
    path: str = "",
    *,
    kustomization: str | None = None,
    variables: Mapping[str, str] | None = None,
    clusters: Sequence[str] = (),
    sources: Mapping[str, Path] | None = None,
    allow_remote_bases: bool = False,
    deadline: float | None = None,
    fetcher: SourceFetcher | None = None,
    helm: HelmOptions | None = None,
    cache: RenderCache | bool = True,
) -> RenderResult:
    """Render ``path`` (source-relative, already validated) of the revision at ``root``.

    ``clusters`` are ``--cluster`` selections (none: every cluster); ``sources`` maps
    ``namespace/name`` of other GitRepositories to trees the user supplied (``--source``).
    Never modifies ``root``: Flux's edits happen in a private copy. Raises RenderError only when
    nothing can be rendered at all (no kustomize) or the revision is ambiguous (one Flux
    Kustomization defined twice); everything else is collected as problems. ``deadline``
    (``time.monotonic()``) bounds every kustomize build; remote resources are refused unless
    ``allow_remote_bases``. ``cache``: the render cache for Flux Kustomizations' builds
    (buildcache.py): True the one in the cache dir unless ``KUBEGATE_RENDER_CACHE=0``, False
    none.
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
    for option, given in (("--kustomization", kustomization), ("--cluster", ",".join(clusters))):
        if given and not scanned:
            raise UsageError(f"{option} {given}: no Flux Kustomization found under the path")
    if scanned:
        repos = _git_sources(root, scan.objects, scanned, other_files)
        plan = select_clusters(find_clusters(scanned, repos, path), clusters)
        return _render_fleet(
            root,
            _Plan(plan, scanned, repos, [*flux_files, *other_files]),
            kustomization,
            variables or {},
            sources or {},
            remote,
            _Charts(helm or HelmOptions(), fetcher),
            (default_cache() if cache else None) if isinstance(cache, bool) else cache,
        )
    charts = _Charts(helm or HelmOptions(), fetcher)
    if kustomization_file(directory) is not None:
        return _render_kustomize(root, path, remote, charts, sources or {})
    plain = scan_plain(root, directory)
    outcome = charts.render(plain.objects, root, sources or {}, remote.deadline)
    kept, not_seen = _split_helm(outcome.objects)
    return RenderResult(
        tuple(kept), tuple(not_seen) + outcome.not_seen, plain.problems, notes=outcome.notes
    )


@dataclass(frozen=True, slots=True)
class _Charts:
    """How HelmReleases are rendered in this render call (``helm/stage.py``)."""

    options: HelmOptions
    fetcher: SourceFetcher | None

    def render(
        self,
        objects: Sequence[RenderedObject],
        root: Path,
        supplied: Mapping[str, Path],
        deadline: float | None,
    ) -> HelmOutcome:
        """HelmReleases of a render without Flux Kustomizations (plain YAML or kustomize).

        A chart's GitRepository is a supplied tree, else another repository when the revision
        defines it, else (not defined here) the scanned source, as in the fleet walk.
        """
        repos = {
            repo.key: repo
            for obj in objects
            if (repo := git_source(obj.value, obj.locator.document(), DEFAULT_NAMESPACE))
        }

        def tree_of(ref: ObjectRef, path: str) -> Path | str:
            if ref.key in supplied:
                return supplied[ref.key]
            repo = repos.get(ref.key)
            if repo is not None:
                return (
                    f"its chart's source GitRepository {ref.key} "
                    f"({url_without_credentials(repo.url)}) is another repository; supply it "
                    f"with --source {ref.key}=DIR|GIT-URL[@REF]"
                )
            return root

        def label(ref: ObjectRef, path: str) -> str:
            return f"{ref.key}:{path}" if ref.key in supplied else path

        context = HelmContext(self.options, self.fetcher, tree_of, label, deadline)
        return render_releases(objects, context)


def _git_sources(
    root: Path,
    objects: Sequence[RenderedObject],
    scanned: Sequence[FluxKustomization],
    other_files: Sequence[Path],
) -> list[GitSource]:
    """GitRepositories next to the Kustomizations (bootstrap syncs name one beside them)."""
    dirs = {posixpath.dirname(ks.origin.file) for ks in scanned if ks.origin.file}
    beside = [f for f in other_files if posixpath.dirname(f.relative_to(root).as_posix()) in dirs]
    found = [*objects, *scan_files(root, beside, quiet=True).objects]
    return [
        repo
        for obj in found
        if (repo := git_source(obj.value, obj.locator.document(), DEFAULT_NAMESPACE)) is not None
    ]


def _render_kustomize(
    root: Path,
    path: str,
    remote: RemoteOptions,
    charts: _Charts,
    supplied: Mapping[str, Path],
) -> RenderResult:
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
        outcome = charts.render(objects, root, supplied, remote.deadline)
        kept, not_seen = _split_helm(outcome.objects)
        return RenderResult(
            tuple(kept),
            tuple(not_seen) + outcome.not_seen,
            (),
            tuple(fetched),
            outcome.notes,
        )


def _loose_files(
    root: Path,
    cluster: Cluster,
    scanned: Sequence[FluxKustomization],
    files: Sequence[Path],
    keep: Callable[[str], bool],
) -> list[Path]:
    # Objects beside the root Kustomizations that no Kustomization covers are applied with
    # them (by `flux bootstrap` or kubectl): their ConfigMaps/Secrets feed substituteFrom.
    # A Kustomization without spec.path covers nothing here, as in roots_of().
    home = cluster.directory or "."
    bases = [
        base
        for ks in scanned
        if ks.source_kind in SCANNED_SOURCE_KINDS
        and ks.origin.file is not None
        and under(home, ks.origin.file)
        and (base := base_of(ks)) != "."
    ]
    loose = []
    for file in files:
        rel = file.relative_to(root).as_posix()
        if under(home, rel) and keep(rel) and not any(under(base, rel) for base in bases):
            loose.append(file)
    return loose


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the quick scan of the tree found: clusters, Kustomizations, GitRepositories, files."""

    clusters: Sequence[Cluster]
    scanned: Sequence[FluxKustomization]
    repos: Sequence[GitSource]
    files: Sequence[Path]


@dataclass(frozen=True, slots=True)
class _Tree:
    """The files a cluster's scanned source holds, as its GitRepository spec shapes them."""

    root: Path
    keep: Callable[[str], bool]
    not_seen: tuple[NotSeen, ...] = ()
    problems: tuple[Problem, ...] = ()
    #: toPath -> ``namespace/name`` of includes nobody supplied.
    missing: Mapping[str, str] = field(default_factory=dict)
    #: toPath -> the tree (``fromPath`` of a supplied source) whose files appear there.
    grafts: Mapping[str, Path] = field(default_factory=dict)


def _keep_all(rel: str) -> bool:
    return True


def _cluster_tree(
    ws: Workspace, cluster: Cluster, repos: Sequence[GitSource], supplied: Mapping[str, Path]
) -> _Tree:
    """Apply the cluster's GitRepository ``spec.ignore`` and ``spec.include`` to the tree.

    source-controller adds ``spec.ignore`` (gitignore syntax, relative to the root) after the
    default exclusions and ``.sourceignore`` files, which the checkout already applied; an
    ``include`` copies another GitRepository's ``fromPath`` (default the root) to ``toPath``
    (default its name), so it is seen only when ``--source`` supplies that repository.
    """
    home = cluster.directory or "."
    repo = next(
        (
            r
            for r in repos
            if r.key == cluster.source and r.origin.file is not None and under(home, r.origin.file)
        ),
        None,
    )
    if repo is None:
        return _Tree(ws.root, _keep_all)
    namespace = repo.key.partition("/")[0]
    grafts: dict[str, Path] = {}
    missing: dict[str, str] = {}
    not_seen: list[NotSeen] = []
    problems: list[Problem] = []
    for entry in repo.spec.get("include") or []:
        ref = entry.get("repository") if isinstance(entry, dict) else None
        name = str(ref.get("name") or "") if isinstance(ref, dict) else ""
        if not name:
            continue
        key = f"{namespace}/{name}"
        from_path = posixpath.normpath(str(entry.get("fromPath") or ".").lstrip("/"))
        to_path = posixpath.normpath(str(entry.get("toPath") or name).lstrip("/"))
        if any(p == ".." or p.startswith("../") for p in (from_path, to_path)) or to_path == ".":
            problems.append(
                Problem(
                    f"GitRepository {repo.key}: include of {key} leaves the source "
                    f"(fromPath {from_path!r}, toPath {to_path!r})",
                    repo.origin,
                    cluster.path,
                )
            )
        elif key in supplied:
            grafts[to_path] = supplied[key] / from_path
        else:
            missing[to_path] = key
            not_seen.append(
                NotSeen(
                    "GitRepository",
                    namespace,
                    name,
                    repo.origin,
                    f"included by GitRepository {repo.key} at {to_path}; supply it with "
                    f"--source {key}=DIR|GIT-URL[@REF]",
                    cluster.path,
                )
            )
    ignore = repo.spec.get("ignore")
    if not isinstance(ignore, str) and not grafts:
        return _Tree(ws.root, _keep_all, tuple(not_seen), tuple(problems), missing, grafts)
    rules = IgnoreRules.from_text(ignore) if isinstance(ignore, str) else None

    def keep(rel: str) -> bool:
        return rules is None or not rules.ignored(rel)

    mirror = ws.mirror(keep, grafts)
    return _Tree(mirror, keep, tuple(not_seen), tuple(problems), missing, grafts)


def _render_fleet(
    root: Path,
    plan: _Plan,
    selection: str | None,
    cli_vars: Mapping[str, str],
    sources: Mapping[str, Path],
    remote: RemoteOptions,
    charts: _Charts,
    disk_cache: RenderCache | None,
) -> RenderResult:
    kustomize = find_kustomize()
    notes: list[NotSeen] = []
    objects: list[RenderedObject] = []
    not_seen: list[NotSeen] = []
    problems: list[Problem] = []
    known: set[str] = set()
    builds: dict[tuple[str, str, str], str] = {}
    fetched: list[RemoteBase] = []
    with workspace(root) as ws:
        for cluster in plan.clusters:
            tree = _cluster_tree(ws, cluster, plan.repos, sources)
            walk = _Walk(
                workspace=replace(ws, root=tree.root),
                kustomize=kustomize,
                cli_vars=cli_vars,
                cluster=cluster.path,
                scanned_sources=frozenset({cluster.source} if cluster.source else ()),
                supplied=sources,
                missing_includes=tree.missing,
                pristine=root,
                grafts=tree.grafts,
                build_cache=builds,
                disk_cache=disk_cache,
                remote=remote,
                oci=OciSources(charts.fetcher, ws.base),
                artgen=ArtifactGenerators(ws.base),
            )
            loose = _loose_files(root, cluster, plan.scanned, plan.files, tree.keep)
            beside: list[RenderedObject] = []
            for obj in scan_files(root, loose, quiet=True).objects:
                walk.index(obj)
                beside.append(obj)
                if _unseen_reason(obj) is not None or is_helm_release(obj.value):
                    # Applied beside the cluster's Kustomizations (by bootstrap or the Flux
                    # Operator): a FluxInstance there is never silently dropped.
                    walk.objects.append(replace(obj, cluster=cluster.path))
            walk.run(cluster.roots)
            if walk.oci is not None:
                walk.objects = walk.oci.relabel(walk.objects)
            if walk.artgen is not None:
                walk.objects = walk.artgen.relabel(walk.objects)
            fetched.extend(walk.fetched)
            found, missing, owned = walk.objects, walk.not_seen, walk.problems
            if selection is not None:
                known.update(walk.seen)
                if selection not in walk.seen:
                    continue
                keep = _descendants(walk.children, selection)
                found = [o for o in found if o.kustomization in keep]
                missing = [n for n in missing if f"{n.namespace}/{n.name}" in keep]
                owned = [(owner, p) for owner, p in owned if owner in keep]
            else:
                missing = [*tree.not_seen, *missing]
                problems.extend(tree.problems)
            context = HelmContext(
                charts.options,
                charts.fetcher,
                walk.chart_tree,
                walk.chart_label,
                remote.deadline,
                cluster.path,
            )
            # Sources and valuesFrom objects: what the cluster renders, and what lies beside
            # its Kustomizations (applied with them, as for substituteFrom).
            outcome = render_releases(found, context, [*walk.objects, *beside])
            found = list(outcome.objects)
            missing = [*missing, *outcome.not_seen]
            notes.extend(outcome.notes)
            objects.extend(found)
            not_seen.extend(missing)
            problems.extend(replace(p, cluster=cluster.path) for _, p in owned)
    if selection is not None and selection not in known:
        raise UsageError(
            f"--kustomization {selection}: not rendered by this revision "
            f"(found: {names_line(list(known))})"
        )
    kept, operator = _split_helm(objects)
    return RenderResult(
        tuple(kept),
        tuple(not_seen + operator),
        tuple(problems),
        tuple(dict.fromkeys(fetched)),
        tuple(notes),
    )
