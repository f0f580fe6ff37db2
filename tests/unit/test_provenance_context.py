"""BuildContext.documents reads source-relative files by their normalised path.

A path kustomize reports (an origin annotation, a configuredIn) may hold ``..`` segments. Joined
raw onto a grafted tree (Flux ``spec.include``), ``inc/x/../../y.yaml`` resolved outside that
tree; normalised it is ``y.yaml``, a file of the source root.
"""

from __future__ import annotations

from pathlib import Path

from kubegate.render.provenance import BuildContext
from kubegate.render.yamlfile import scalar_text, walk


def _kind(context: BuildContext, rel: str) -> str | None:
    docs = context.documents(rel)
    assert docs is not None
    (doc,) = docs
    return scalar_text(walk(doc.node, ("kind",)))


def test_dot_dot_path_is_matched_against_grafts_after_normalising(tmp_path: Path) -> None:
    pristine = tmp_path / "source"
    pristine.mkdir()
    (pristine / "y.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\n")
    graft = tmp_path / "include" / "tree"
    (graft / "x").mkdir(parents=True)
    (graft / "z.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: z}\n")
    # What the raw join tree / "x/../../y.yaml" reaches: beside the grafted tree, not in it.
    (tmp_path / "include" / "y.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: y}\n"
    )
    context = BuildContext(pristine=pristine, build_dir="", grafts={"inc": graft})

    assert _kind(context, "inc/x/../../y.yaml") == "ConfigMap"
    # One cache entry per file, whatever spelling asked for it first.
    assert context.documents("y.yaml") is context.documents("inc/x/../../y.yaml")
    assert _kind(context, "inc/x/../z.yaml") == "Service"
    assert context.documents("inc/../../y.yaml") is None
