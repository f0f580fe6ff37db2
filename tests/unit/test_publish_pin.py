"""``--publish-pin`` edits Flux Kustomizations as text: comments, quoting and order stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubegate.decide.gate import (
    GateResult,
    ImageFacts,
    ImageResult,
    InspectedImage,
    Revision,
    Verdict,
)
from kubegate.errors import PublishError
from kubegate.images.find import ImageScan
from kubegate.images.reference import parse_reference
from kubegate.models import ChartInfo, Digest, ImageUse, Origin, SourceInfo
from kubegate.publish.pin import pin_text, pin_tree
from kubegate.report.pin import PinEntry, pin_document

D1 = Digest("sha256:" + "1" * 64)
D2 = Digest("sha256:" + "2" * 64)
HEAD = """# fleet
---
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps   # the apps
  namespace: flux-system
spec:
  interval: 10m
  sourceRef: {kind: GitRepository, name: fleet}
"""


def test_images_added_after_the_last_key_of_spec() -> None:
    text = HEAD + "  path: ./apps  # where\n"
    pinned = pin_text(text, {1: (PinEntry("ghcr.io/org/web", D1),)}, "ks.yaml")
    assert pinned == text + f"  images:\n    - name: ghcr.io/org/web\n      digest: {D1}\n"


def test_existing_entries_gain_or_change_their_digest_and_others_are_appended() -> None:
    text = HEAD + (
        "  images:\n"
        "  - name: web   # keep\n"
        '    newTag: "1.2"\n'
        "  - name: api\n"
        f"    digest: {D2}\n"
        "  prune: true\n"
        "# trailing comment\n"
    )
    entries = (PinEntry("web", D1), PinEntry("api", D1), PinEntry("db", D2, "ghcr.io/x/db"))
    pinned = pin_text(text, {1: entries}, "ks.yaml")
    assert pinned == HEAD + (
        "  images:\n"
        "  - name: web   # keep\n"
        '    newTag: "1.2"\n'
        f"    digest: {D1}\n"
        "  - name: api\n"
        f"    digest: {D1}\n"
        f"  - name: db\n    newName: ghcr.io/x/db\n    digest: {D2}\n"
        "  prune: true\n"
        "# trailing comment\n"
    )


def test_empty_flow_list_and_a_file_without_final_newline() -> None:
    text = HEAD + "  images: []\n  path: ./apps"
    pinned = pin_text(text, {1: (PinEntry("web", D1),)}, "ks.yaml")
    assert pinned == HEAD + f"  images: [{{name: web, digest: {D1}}}]\n  path: ./apps"
    text = HEAD + "  path: ./apps"
    assert pin_text(text, {1: (PinEntry("web", D1),)}, "ks.yaml").endswith(
        f"  path: ./apps\n  images:\n    - name: web\n      digest: {D1}\n"
    )


def test_a_block_scalar_ends_the_spec() -> None:
    text = HEAD + "  patches:\n    - patch: |\n        kind: X\n\n# next\n"
    pinned = pin_text(text, {1: (PinEntry("web", D1),)}, "ks.yaml")
    assert f"  images:\n    - name: web\n      digest: {D1}\n" in pinned
    assert pinned.endswith("# next\n")


@pytest.mark.parametrize(
    "tail",
    [
        "  images: [{name: web, newTag: '1'}]\n",  # a non-empty flow list
        "  images: {}\n",  # not a list
    ],
)
def test_layouts_it_will_not_edit_refuse_to_publish(tail: str) -> None:
    with pytest.raises(PublishError, match=r"--publish-pin: ks\.yaml"):
        pin_text(HEAD + tail, {1: (PinEntry("web", D1),)}, "ks.yaml")


def test_flow_spec_is_refused() -> None:
    text = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nspec: {path: x}\n"
    with pytest.raises(PublishError, match="block mapping"):
        pin_text(text, {0: (PinEntry("web", D1),)}, "ks.yaml")


def test_aliases_are_refused_before_any_comparison() -> None:
    bomb = "".join(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]\n" for i in range(1, 12))
    text = HEAD + "  path: ./apps\n" + "---\nx0: &x0 [lol]\n" + bomb
    with pytest.raises(PublishError, match="aliases"):
        pin_text(text, {1: (PinEntry("web", D1),)}, "ks.yaml")


def _chart_result(helm_release: str | None) -> GateResult:
    ref = parse_reference("ghcr.io/org/web:1.0")
    uses = (
        ImageUse(
            ref,
            Origin("apps/release.yaml", 9),
            "Deployment",
            "apps",
            "web",
            "web",
            kustomization="flux-system/apps",
            declared="ghcr.io/org/web:1.0",
            helm_release=helm_release,
            chart=ChartInfo("web", "0.1.0", None, "charts/web") if helm_release else None,
        ),
    )
    facts = ImageFacts(str(ref), ref, uses, InspectedImage(str(ref), D1, ()))
    revision = Revision(SourceInfo("dir", "fleet"), ImageScan(uses, ()), (), ())
    return GateResult(revision, (ImageResult(facts, ()),), (), Verdict.PASS, 0)


def test_images_from_a_chart_are_never_pinned_through_kustomize() -> None:
    # kustomize-controller's spec.images never reaches what helm-controller renders: a pin
    # there would be silently ineffective, so it is refused (publish) or left out (file).
    assert pin_document(_chart_result(None)).entries == (PinEntry("ghcr.io/org/web", D1),)
    document = pin_document(_chart_result("apps/web"))
    assert document.entries == ()
    (warning,) = document.warnings
    assert "rendered by the chart of HelmRelease apps/web" in warning
    with pytest.raises(PublishError, match="rendered by the chart of HelmRelease apps/web"):
        pin_tree(Path("/nonexistent"), _chart_result("apps/web"))
