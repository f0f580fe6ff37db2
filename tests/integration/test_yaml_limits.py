"""YAML alias bombs are refused wherever kubegate reads YAML (issue 15 item 7).

The judged revision's bomb (a Flux Kustomization's ``postBuild.substitute``, whose values are
turned into strings) must end in exit 2, the user's own configuration or exception file in exit
3; quickly, and with a bounded peak RSS, measured by the child process on itself (generous
bounds: the point is "bounded", not "small"). The peak is the kernel's ``VmHWM`` of the child's
own program: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` keeps, across ``execve``, the size of
the forking parent (pytest, hundreds of MB late in a full run), so it is not used.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kubegate import yamlload
from tests.conftest import cli_env

#: ~10^9 list items when expanded, a few hundred bytes written ("billion laughs").
BOMB = "\n".join(
    [
        '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)),
    ]
)

#: Peak RSS the whole command may reach (KiB, as /proc reports it).
RSS_BOUND_KIB = 400 * 1024
TIME_BOUND_S = 60.0

_MEASURED = textwrap.dedent(
    """\
    import sys
    from kubegate.cli import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    print("MAXRSS", peak, file=sys.stderr)
    sys.exit(code)
    """
)


def _measured(args: list[str], tmp_path: Path) -> tuple[int, str, int, float]:
    """Run kubegate in a child that reports its own peak RSS: (exit, stderr, KiB, seconds)."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED, *args],
        cwd=tmp_path,
        env=cli_env({"KUBEGATE_CACHE_DIR": str(tmp_path / "cache"), "NO_COLOR": "1"}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    elapsed = time.monotonic() - started
    lines = proc.stderr.splitlines()
    rss = int(next(line.split()[1] for line in lines if line.startswith("MAXRSS")))
    return proc.returncode, proc.stderr, rss, elapsed


def test_bomb_in_postbuild_substitute_is_refused(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    (fleet / "clusters").mkdir(parents=True)
    (fleet / "app").mkdir()
    (fleet / "app" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {k: '${bomb}'}\n"
    )
    (fleet / "clusters" / "app.yaml").write_text(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        "metadata: {name: app, namespace: flux-system}\n"
        "x-anchors:\n" + BOMB + "\n"
        "spec:\n  interval: 10m\n"
        "  path: ./app\n  sourceRef: {kind: GitRepository, name: fleet}\n"
        "  postBuild:\n    substitute:\n      bomb: *a9\n"
    )
    code, stderr, rss, elapsed = _measured(["images", str(fleet), "--format", "json"], tmp_path)
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert "clusters/app.yaml" in stderr and "aliases expand" in stderr
    assert rss < RSS_BOUND_KIB, rss
    assert elapsed < TIME_BOUND_S


def test_bomb_in_a_kustomize_resource_is_refused(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (app / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations:\n"
        + textwrap.indent(BOMB, "  ")
        + "\ndata: {k: v}\n"
    )
    code, stderr, rss, elapsed = _measured(["images", str(app), "--format", "json"], tmp_path)
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert rss < RSS_BOUND_KIB, rss
    assert elapsed < TIME_BOUND_S


@pytest.mark.parametrize(
    ("option", "name"), [("--config", "kubegate.yaml"), ("--ignorefile", "ignore.yaml")]
)
def test_bomb_in_the_users_own_files_is_a_config_error(
    tmp_path: Path, option: str, name: str
) -> None:
    user_file = tmp_path / name
    user_file.write_text("x-anchors:\n" + BOMB + "\npolicy: *a9\n")
    (tmp_path / "src").mkdir()
    code, stderr, rss, elapsed = _measured(
        ["scan", str(tmp_path / "src"), option, str(user_file), "--skip-db-update"], tmp_path
    )
    assert code == 3, stderr
    assert f"{user_file}: invalid YAML: aliases expand" in stderr
    assert rss < RSS_BOUND_KIB, rss
    assert elapsed < TIME_BOUND_S


def test_ordinary_aliases_still_load() -> None:
    text = "base: &b {image: nginx, ports: [80, 443]}\nweb: *b\nworker: *b\n"
    value = yamlload.safe_load(text)
    assert value["web"] == value["worker"] == {"image": "nginx", "ports": [80, 443]}


def test_a_self_containing_alias_is_refused() -> None:
    with pytest.raises(yamlload.AliasExpansionError, match="contains it"):
        yamlload.safe_load("a: &x [1, *x]\n")


def test_limit_grows_with_the_text() -> None:
    # One anchored 1 MiB string used 20 times is 20 MiB expanded: over the floor of 8 MiB...
    big = "x" * (1024 * 1024)
    text = f"a: &s {big}\nb: [{', '.join(['*s'] * 20)}]\n"
    with pytest.raises(yamlload.AliasExpansionError):
        yamlload.load_all(text)
    # ...while the same text used twice stays within twice the text's length.
    assert len(yamlload.load_all(f"a: &s {big}\nb: [*s]\n")[0]["b"][0]) == len(big)


def test_rendering_is_under_the_commands_deadline(
    tmp_path: Path, gate_dbs: dict[str, Path]
) -> None:
    # A deadline already past when kustomize would start: the build is not run, and the
    # revision is not proven (kind render), instead of rendering past --timeout.
    from tests.fixtures.gatefleet import write_fleet

    fleet = write_fleet(tmp_path / "fleet", "registry.example/web:1")
    args = ["scan", str(fleet), "--db", str(gate_dbs["osv"]), "--skip-db-update"]
    code, stderr, _, _ = _measured([*args, "--timeout", "0.000001"], tmp_path)
    assert code == 2, stderr
    assert "Kustomization flux-system/apps: not rendered before --timeout" in stderr
