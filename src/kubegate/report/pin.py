"""``kubegate scan --pin-digests FILE``: a kustomize ``images:`` list pinning what was scanned.

Deploy what was checked (DESIGN.md invariant 3.2): every scanned image gets an entry with the
top-level manifest or index digest that was scanned. kustomize matches ``name`` against the image
name as written in the manifests, so an entry is written for the name as declared at each use
(and for the normalised name), with ``newName`` when an ``images:`` override or a Flux
Kustomization renamed it. kustomize pins per name, not per tag: a name used with two different
digests cannot be pinned and is named instead. Images served from ``imageSources`` are not
pinned (the local digest is not the registry's), nor those not scanned or not allowed, nor
those a HelmRelease's chart renders (kustomize never sees the chart's output); each is
named in a comment of the file and in :attr:`PinDocument.warnings` (the CLI prints them).

The file is a kustomize ``Component`` (put it in a directory as ``kustomization.yaml`` and list
the directory under ``components:``); its ``images:`` list also fits a kustomization or a Flux
Kustomization's ``spec.images`` as it is. Called by ``kubegate.cli.scan``.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from kubegate.decide.gate import GateResult, ImageResult
from kubegate.errors import KubegateError
from kubegate.images.reference import parse_reference
from kubegate.models import Digest


@dataclass(frozen=True, slots=True)
class PinEntry:
    """One kustomize ``images:`` entry."""

    name: str
    digest: Digest
    new_name: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The entry as kustomize spells it."""
        entry = {"name": self.name}
        if self.new_name:
            entry["newName"] = self.new_name
        entry["digest"] = self.digest
        return entry


@dataclass(frozen=True, slots=True)
class PinDocument:
    """The file's text, its entries, and one warning per image that is not pinned."""

    text: str
    entries: tuple[PinEntry, ...]
    warnings: tuple[str, ...]


def pin_document(result: GateResult) -> PinDocument:
    """The pins of every scanned image of ``result``."""
    candidates: dict[str, set[tuple[Digest, str | None]]] = {}
    warnings: list[str] = []
    for image in result.images:
        reason = _unpinnable(image)
        inspected = image.facts.inspected
        if reason is not None or inspected is None:
            warnings.append(f"{image.facts.reference} not pinned: {reason}")
            continue
        scanned = image.facts.ref.name
        for name in _written_names(image):
            new_name = None if _canonical(name) == scanned else scanned
            candidates.setdefault(name, set()).add((inspected.digest, new_name))
    entries: list[PinEntry] = []
    for name in sorted(candidates):
        choices = candidates[name]
        if len(choices) > 1:
            digests = ", ".join(sorted(f"{new or name}@{d}" for d, new in choices))
            warnings.append(
                f"{name} not pinned: used for {len(choices)} different images ({digests}); "
                "kustomize pins one digest per name"
            )
            continue
        ((digest, new_name),) = choices
        entries.append(PinEntry(name, digest, new_name))
    header = [
        "# Written by kubegate scan --pin-digests: every image pinned to the digest that was",
        f"# scanned (verdict {result.verdict.value}). A kustomize Component: save it as",
        "# DIR/kustomization.yaml and list DIR under components:, or copy its images: list.",
    ]
    header.extend(f"# NOT PINNED: {warning}" for warning in warnings)
    body = {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "images": [entry.as_dict() for entry in entries],
    }
    text = "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=False)
    return PinDocument(text, tuple(entries), tuple(warnings))


def _unpinnable(image: ImageResult) -> str | None:
    inspected = image.facts.inspected
    if image.violations:
        return image.violations[0]
    if inspected is None:
        return "it could not be scanned"
    if inspected.substituted is not None:
        return (
            f"served from imageSources ({inspected.substituted}): its digest is not the registry's"
        )
    charted = next((use for use in image.facts.uses if use.helm_release), None)
    if charted is not None:
        # helm-controller renders the chart after kustomize-controller applied the HelmRelease:
        # a kustomize images: entry never reaches the chart's output, so a pin there would be
        # silently ineffective.
        return (
            f"rendered by the chart of HelmRelease {charted.helm_release}, which a kustomize "
            "images: entry does not reach (pin it in the HelmRelease's values or a "
            "postRenderers images entry)"
        )
    return None


def _written_names(image: ImageResult) -> list[str]:
    names = {image.facts.ref.name}
    for use in image.facts.uses:
        declared = _name_part(use.declared) if use.declared else None
        if declared is not None:
            names.add(declared)
    return sorted(names)


def _name_part(text: str) -> str | None:
    """The name as written (no tag or digest), or None when it is not a plain reference."""
    name = text.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: len(name) - len(last[-1]) + last[-1].index(":")]
    if "$" in name or not name:
        return None
    try:
        parse_reference(name)
    except KubegateError:
        return None
    return name


def _canonical(name: str) -> str:
    return parse_reference(name).name
