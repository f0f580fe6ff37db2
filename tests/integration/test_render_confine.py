"""Rendering reads nothing outside the source root (issue 15 item 2), field by field.

Every path field of kustomize's ``Kustomization`` type (api/types/kustomization.go, with the
builtin plugin configs ``generators``/``transformers``/``validators`` can hold) is tried with
an absolute path, a ``..`` escape, ``/proc/self/environ``, ``/dev/zero`` and a symlink leaving
the tree. Each must be refused before kustomize runs, naming the kustomization file and the
field, and nothing of the outside file or of the environment may appear in what kubegate says.
The in-process matrix calls :func:`kubegate.render.render` (the CLI drops symlinks while copying
the source, so only the render API sees one); the CLI tests below run the real command with a
canary secret in its environment.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from kubegate.render import render
from tests.conftest import RunCli
from tests.fixtures.registry import Reply, ScriptedServer, Seen

CANARY_FILE = "kubegate-canary-file-7c1d0e"
CANARY_ENV = "kubegate-canary-env-93ab51"

CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\ndata: {k: v}\n"

#: (field as reported, kustomization text with {p} where the path goes)
FIELDS: list[tuple[str, str]] = [
    ("resources[1]", "resources: [cm.yaml, '{p}']"),
    ("bases[0]", "resources: [cm.yaml]\nbases: ['{p}']"),
    ("resources[0]", "Resources: ['{p}']"),  # Go's encoding/json matches keys in any case
    ("components[0]", "resources: [cm.yaml]\ncomponents: ['{p}']"),
    ("crds[0]", "resources: [cm.yaml]\ncrds: ['{p}']"),
    ("configurations[0]", "resources: [cm.yaml]\nconfigurations: ['{p}']"),
    ("patchesStrategicMerge[0]", "resources: [cm.yaml]\npatchesStrategicMerge: ['{p}']"),
    ("patches[0].path", "resources: [cm.yaml]\npatches: [{{path: '{p}'}}]"),
    (
        "patchesJson6902[0].path",
        "resources: [cm.yaml]\npatchesJson6902:\n"
        "- {{path: '{p}', target: {{version: v1, kind: ConfigMap, name: base}}}}",
    ),
    (
        "replacements[0].path",
        "resources: [cm.yaml]\nreplacements: [{{path: '{p}'}}]",
    ),
    (
        "configMapGenerator[0].files[0]",
        "configMapGenerator: [{{name: c, files: ['x={p}']}}]",
    ),
    ("configMapGenerator[0].files[0]", "configMapGenerator: [{{name: c, files: ['{p}']}}]"),
    ("configMapGenerator[0].envs[0]", "configMapGenerator: [{{name: c, envs: ['{p}']}}]"),
    ("configMapGenerator[0].env", "configMapGenerator: [{{name: c, env: '{p}'}}]"),
    ("secretGenerator[0].files[0]", "secretGenerator: [{{name: s, files: ['x={p}']}}]"),
    ("secretGenerator[0].envs[0]", "secretGenerator: [{{name: s, envs: ['{p}']}}]"),
    ("helmGlobals.chartHome", "resources: [cm.yaml]\nhelmGlobals: {{chartHome: '{p}'}}"),
    (
        "helmCharts[0].valuesFile",
        "resources: [cm.yaml]\nhelmCharts: [{{name: c, valuesFile: '{p}'}}]",
    ),
    (
        "helmCharts[0].additionalValuesFiles",
        "resources: [cm.yaml]\nhelmCharts: [{{name: c, additionalValuesFiles: ['{p}']}}]",
    ),
    (
        "helmChartInflationGenerator[0].chartHome",
        "resources: [cm.yaml]\nhelmChartInflationGenerator: [{{chartName: c, chartHome: '{p}'}}]",
    ),
    ("generators[0]", "generators: ['{p}']"),
    ("transformers[0]", "resources: [cm.yaml]\ntransformers: ['{p}']"),
    ("validators[0]", "resources: [cm.yaml]\nvalidators: ['{p}']"),
    ("openapi.path", "resources: [cm.yaml]\nopenapi: {{path: '{p}'}}"),
    (
        # An inline builtin plugin config in transformers: its path is checked too.
        "transformers[0][0].path",
        "resources: [cm.yaml]\ntransformers:\n- |\n  apiVersion: builtin\n"
        "  kind: PatchTransformer\n  metadata: {{name: p}}\n  path: '{p}'",
    ),
    (
        "generators[0][0] ConfigMapGenerator.files[0]",
        "generators:\n- |\n  apiVersion: builtin\n  kind: ConfigMapGenerator\n"
        "  metadata: {{name: g}}\n  files: ['{p}']",
    ),
]

ATTACKS = ["absolute", "dotdot", "proc", "dev", "symlink"]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the source root holding a canary secret."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_text(f"TOKEN={CANARY_FILE}\n")
    (directory / "kustomization.yaml").write_text("resources: [secret.txt]\n")
    return directory


def _attack_path(attack: str, app: Path, outside: Path) -> str:
    target = outside / "secret.txt"
    if attack == "absolute":
        return str(target)
    if attack == "dotdot":
        return os.path.relpath(target, app)
    if attack == "proc":
        return "/proc/self/environ"
    if attack == "dev":
        return "/dev/zero"
    (app / "link.txt").symlink_to(target)
    return "link.txt"


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize(
    ("field", "template"), FIELDS, ids=[f"{i}-{f[0]}" for i, f in enumerate(FIELDS)]
)
def test_every_path_field_is_confined(
    tmp_path: Path,
    outside: Path,
    monkeypatch: pytest.MonkeyPatch,
    field: str,
    template: str,
    attack: str,
) -> None:
    monkeypatch.setenv("KUBEGATE_TEST_CANARY", CANARY_ENV)
    root = tmp_path / "repo"
    app = root / "app"
    app.mkdir(parents=True)
    (app / "cm.yaml").write_text(CONFIG_MAP)
    value = _attack_path(attack, app, outside)
    (app / "kustomization.yaml").write_text(template.format(p=value) + "\n")
    result = render(root, "app")
    (problem,) = result.problems
    assert result.objects == ()
    assert problem.message.startswith(f"app/kustomization.yaml: {field}"), problem.message
    assert "source root" in problem.message or "regular file" in problem.message
    text = repr(result)
    assert CANARY_FILE not in text
    assert CANARY_ENV not in text


@pytest.mark.parametrize("attack", ATTACKS)
def test_plugin_config_files_are_checked_too(tmp_path: Path, outside: Path, attack: str) -> None:
    root = tmp_path / "repo"
    app = root / "app"
    app.mkdir(parents=True)
    (app / "cm.yaml").write_text(CONFIG_MAP)
    value = _attack_path(attack, app, outside)
    (app / "tr.yaml").write_text(
        "apiVersion: builtin\nkind: ReplacementTransformer\nmetadata: {name: r}\n"
        f"replacements: [{{path: '{value}'}}]\n"
    )
    (app / "kustomization.yaml").write_text("resources: [cm.yaml]\ntransformers: [tr.yaml]\n")
    (problem,) = render(root, "app").problems
    assert problem.message.startswith(
        "app/kustomization.yaml: transformers[0][0].replacements[0].path"
    ), problem.message
    assert CANARY_FILE not in problem.message


def test_nested_kustomization_is_checked_too(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "repo"
    (root / "app" / "base").mkdir(parents=True)
    (root / "app" / "kustomization.yaml").write_text("resources: [base]\n")
    (root / "app" / "base" / "cm.yaml").write_text(CONFIG_MAP)
    (root / "app" / "base" / "kustomization.yaml").write_text(
        f"resources: [cm.yaml]\npatches: [{{path: '{outside / 'secret.txt'}'}}]\n"
    )
    (problem,) = render(root, "app").problems
    assert problem.message.startswith("app/base/kustomization.yaml: patches[0].path: absolute")


def test_paths_inside_the_root_still_build(tmp_path: Path) -> None:
    # Flux builds with load restrictions off: files of a sibling directory are fine.
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "common").mkdir()
    (root / "common" / "patch.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\ndata: {k: patched}\n"
    )
    (root / "common" / "settings.env").write_text("MODE=prod\n")
    (root / "app" / "cm.yaml").write_text(CONFIG_MAP)
    (root / "app" / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches: [{path: ../common/patch.yaml}]\n"
        "configMapGenerator: [{name: gen, envs: [../common/settings.env]}]\n"
        "patchesStrategicMerge:\n- |\n  apiVersion: v1\n  kind: ConfigMap\n"
        "  metadata: {name: base}\n  data: {extra: x}\n"
    )
    result = render(root, "app")
    assert result.problems == ()
    values = {o.name: o.value for o in result.objects}
    assert values["base"]["data"] == {"k": "patched", "extra": "x"}
    (generated,) = [v for n, v in values.items() if n.startswith("gen-")]
    assert generated["data"] == {"MODE": "prod"}


def _fleet(root: Path, kustomization: str, files: dict[str, str]) -> Path:
    """A Flux Kustomization applying ./app, whose kustomization is ``kustomization``."""
    (root / "clusters").mkdir(parents=True)
    (root / "clusters" / "app.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: app, namespace: flux-system}
            spec:
              interval: 10m
              path: ./app
              sourceRef: {kind: GitRepository, name: fleet}
            """
        )
    )
    (root / "app").mkdir()
    (root / "app" / "kustomization.yaml").write_text(kustomization)
    for name, text in files.items():
        (root / "app" / name).write_text(text)
    return root


def _deployment(image: str) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web}}
        spec:
          selector: {{matchLabels: {{app: web}}}}
          template:
            metadata: {{labels: {{app: web}}}}
            spec:
              containers: [{{name: web, image: "{image}"}}]
        """
    )


#: The attack of the issue: a generated ConfigMap's data replaced into ``image:``.
_REPLACE_INTO_IMAGE = """
replacements:
- source: {kind: ConfigMap, name: leak, fieldPath: data.x}
  targets:
  - select: {kind: Deployment, name: web}
    fieldPaths: [spec.template.spec.containers.0.image]
"""


Factory = Callable[..., ScriptedServer]


def _recording(scripted_server: Factory) -> tuple[ScriptedServer, list[str]]:
    """A registry stand-in that records every path asked for and has no image at all."""
    paths: list[str] = []

    def route(request: Seen) -> Reply:
        paths.append(request.path)
        return Reply(200, b"{}") if request.path == "/v2/" else Reply(404)

    return scripted_server(route), paths


def _scan(run_cli: RunCli, fleet: Path, db: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    result = run_cli(
        "scan", str(fleet), "--db", str(db), "--skip-db-update", "--format", "json", env=env
    )
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize(
    "files_entry", ["x=/proc/self/environ", "OUTSIDE", "x=../../outside/secret.txt"]
)
def test_host_file_into_image_never_leaves(
    run_cli: RunCli,
    tmp_path: Path,
    outside: Path,
    scripted_server: Factory,
    gate_dbs: dict[str, Path],
    files_entry: str,
) -> None:
    registry, paths = _recording(scripted_server)
    entry = files_entry.replace("OUTSIDE", f"x={outside / 'secret.txt'}")
    fleet = _fleet(
        tmp_path / "fleet",
        "resources: [web.yaml]\n"
        f"configMapGenerator: [{{name: leak, files: ['{entry}']}}]\n" + _REPLACE_INTO_IMAGE,
        {"web.yaml": _deployment(f"{registry.host}/x:1")},
    )
    # `..` counts from app/ in kubegate's private copy of the source: refused all the same.
    result = _scan(run_cli, fleet, gate_dbs["osv"], env={"KUBEGATE_TEST_CANARY": CANARY_ENV})
    assert result.returncode == 2, result.stderr
    output = result.stdout + result.stderr
    assert CANARY_ENV not in output and CANARY_FILE not in output
    (error,) = json.loads(result.stdout)["errors"]
    assert error["message"].startswith(
        "Kustomization flux-system/app: app/kustomization.yaml: configMapGenerator[0].files[0]"
    )
    assert paths == []  # the registry was never asked anything


def test_env_file_cannot_read_the_environment(
    run_cli: RunCli, tmp_path: Path, scripted_server: Factory, gate_dbs: dict[str, Path]
) -> None:
    # kustomize fills an env-file line without "=" from its own environment (api/kv): the
    # build runs with none of kubegate's, so the CI's secrets cannot reach a registry.
    registry, paths = _recording(scripted_server)
    fleet = _fleet(
        tmp_path / "fleet",
        "resources: [web.yaml]\n"
        "configMapGenerator: [{name: leak, envs: [vars.env]}]\n" + _REPLACE_INTO_IMAGE,
        {"web.yaml": _deployment(f"{registry.host}/x:1"), "vars.env": "KUBEGATE_TEST_CANARY\n"},
    )
    result = _scan(run_cli, fleet, gate_dbs["osv"], env={"KUBEGATE_TEST_CANARY": CANARY_ENV})
    assert CANARY_ENV not in result.stdout + result.stderr
    # The variable is empty in kustomize's environment: the image became "" (not proven).
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout)["images"] == []
    assert paths == []


def test_reference_with_a_newline_is_never_sent(
    run_cli: RunCli, tmp_path: Path, scripted_server: Factory, gate_dbs: dict[str, Path]
) -> None:
    registry, paths = _recording(scripted_server)
    control = _deployment(f"{registry.host}/control:1").replace("name: web}", "name: control}")
    fleet = _fleet(
        tmp_path / "fleet",
        "resources: [web.yaml, control.yaml]\n"
        "configMapGenerator:\n- name: leak\n  literals:\n"
        f'  - "x={registry.host}/x\\nInjected: header:1"\n' + _REPLACE_INTO_IMAGE,
        {"web.yaml": _deployment(f"{registry.host}/x:1"), "control.yaml": control},
    )
    result = _scan(run_cli, fleet, gate_dbs["osv"])
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    assert [image["image"] for image in report["images"]] == [f"{registry.host}/control:1"]
    (error,) = report["errors"]
    assert "\n" not in error["message"] and "invalid" in error["message"]
    # The valid control image was asked for; the injected reference never was.
    asked = [path for path in paths if path != "/v2/"]
    assert asked and all(path.startswith("/v2/control/") for path in asked), paths
