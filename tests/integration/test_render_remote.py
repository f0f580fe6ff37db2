"""Remote kustomize bases and duplicate Kustomizations (issue 15 items 5 and 8), end to end.

A remote resource is not proven by default and nothing is fetched: the loopback HTTP server
(tests/fixtures/httpserve.py) counts every request. ``--allow-remote-bases`` (or the config key
``render.allowRemoteBases``) fetches plain http(s) YAML files through kubegate's own client and
reports their sha256; git forms stay refused. URL forms follow kustomize's loaders
(api/internal/git/repospec.go, api/internal/loader/fileloader.go ``IsRemoteFile``).
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.fixtures.gatefleet import FIXED, FLUX_KS, VULNERABLE, gate_layer, write_fleet
from tests.fixtures.httpserve import HTTPServe
from tests.fixtures.oci import build_image
from tests.fixtures.registry import RegistryServer


@pytest.fixture(scope="module")
def images(registry_plain: RegistryServer) -> dict[str, str]:
    """A vulnerable and a fixed image in the loopback registry."""
    registry_plain.push("remote/web", "vulnerable", build_image([gate_layer(*VULNERABLE)]))
    registry_plain.push("remote/web", "fixed", build_image([gate_layer(*FIXED)]))
    return {
        "vulnerable": registry_plain.ref("remote/web", "vulnerable"),
        "fixed": registry_plain.ref("remote/web", "fixed"),
    }


def _deployment(image: str, name: str = "remote-web") -> bytes:
    return textwrap.dedent(
        f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}, namespace: apps}}
        spec:
          selector: {{matchLabels: {{app: {name}}}}}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec:
              containers: [{{name: web, image: "{image}"}}]
        """
    ).encode()


def _fleet_with_remote(root: Path, local_image: str, url: str) -> Path:
    fleet = write_fleet(root, local_image)
    (fleet / "apps" / "kustomization.yaml").write_text(f"resources: [web.yaml, '{url}']\n")
    return fleet


def _scan(run_cli: RunCli, fleet: Path, db: Path, *args: str):  # type: ignore[no-untyped-def]
    result = run_cli(
        "scan", str(fleet), "--db", str(db), "--skip-db-update", "--format", "json", *args
    )
    assert "Traceback" not in result.stderr
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def test_remote_base_is_not_proven_and_not_fetched(
    run_cli: RunCli,
    tmp_path: Path,
    http_serve: HTTPServe,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
) -> None:
    url = http_serve.add("base/deploy.yaml", _deployment(images["fixed"]))
    fleet = _fleet_with_remote(tmp_path / "fleet", images["fixed"], url)
    result, report = _scan(run_cli, fleet, gate_dbs["osv"])
    assert result.returncode == 2, result.stderr
    (error,) = report["errors"]
    assert error["message"] == (
        f"Kustomization flux-system/apps: apps/kustomization.yaml: resources[1]: remote base "
        f"{url} is not proven: kubegate judges only the files of the revision (vendor it, or "
        "pass --allow-remote-bases to fetch it)"
    )
    assert report["remoteBases"] == []
    assert sum(http_serve.requests.values()) == 0


@pytest.mark.parametrize(
    "reference",
    [
        "github.com/example/fleet//base?ref=v1",
        "https://github.com/example/fleet//base?ref=v1",
        "git@github.com:example/fleet.git//base",
        "ssh://git@example.com/fleet.git//base",
        "git::https://example.com/fleet.git",
        "gh:example/fleet",
        "oci://registry.example/fleet/base:v1",
        "https://dev.azure.com/org/project/_git/repo",
    ],
)
def test_git_and_oci_bases_are_refused_even_when_allowed(
    run_cli: RunCli, tmp_path: Path, reference: str
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "kustomization.yaml").write_text(f"resources: ['{reference}']\n")
    for extra in ([], ["--allow-remote-bases"]):
        result = run_cli("images", str(app), "--format", "json", *extra)
        assert result.returncode == 2, result.stderr
        (error,) = json.loads(result.stdout)["errors"]
        assert error["message"].startswith("kustomization.yaml: resources[0]: remote base")
        if extra:
            assert "not supported even with --allow-remote-bases" in error["message"]


def test_allowed_remote_base_is_fetched_judged_and_reported(
    run_cli: RunCli,
    tmp_path: Path,
    http_serve: HTTPServe,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
) -> None:
    body = _deployment(images["vulnerable"])
    url = http_serve.add("base/deploy.yaml", body)
    fleet = _fleet_with_remote(tmp_path / "fleet", images["fixed"], url)
    result, report = _scan(run_cli, fleet, gate_dbs["osv"], "--allow-remote-bases")
    # The remote Deployment's vulnerable image is judged like any other: it blocks.
    assert result.returncode == 1, result.stderr
    assert report["errors"] == []
    assert report["remoteBases"] == [
        {
            "url": url,
            "digest": f"sha256:{hashlib.sha256(body).hexdigest()}",
            "file": "apps/kustomization.yaml",
            "field": "resources[1]",
        }
    ]
    judged = {image["image"]: image for image in report["images"]}
    assert set(judged) == {images["vulnerable"], images["fixed"]}
    # The fetched Deployment is declared by the kustomization naming the URL.
    (use,) = judged[images["vulnerable"]]["uses"]
    assert (use["file"], use["name"]) == ("apps/kustomization.yaml", "remote-web")
    assert http_serve.requests["/base/deploy.yaml"] == 1
    table = run_cli(
        "scan", str(fleet), "--db", str(gate_dbs["osv"]), "--skip-db-update",
        "--allow-remote-bases",
    )  # fmt: skip
    assert "Remote bases fetched (--allow-remote-bases), judged as fetched:" in table.stdout
    assert f"  {url} sha256 {hashlib.sha256(body).hexdigest()}" in table.stdout


def test_config_key_allows_remote_bases(
    run_cli: RunCli,
    tmp_path: Path,
    http_serve: HTTPServe,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
) -> None:
    url = http_serve.add("deploy.yaml", _deployment(images["fixed"]))
    fleet = _fleet_with_remote(tmp_path / "fleet", images["fixed"], url)
    config = tmp_path / "config" / "kubegate.yaml"
    config.parent.mkdir()
    config.write_text("render:\n  allowRemoteBases: true\n")
    result, report = _scan(run_cli, fleet, gate_dbs["osv"], "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert [item["url"] for item in report["remoteBases"]] == [url]


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b"<html>a repository page</html>\n", {}, "is not a YAML file of Kubernetes objects"),
        (b"kind: [\n", {}, "invalid YAML"),
        (b"x" * 10, {"Content-Length": str(64 * 1024 * 1024)}, "larger than"),
    ],
)
def test_allowed_remote_base_must_be_small_kubernetes_yaml(
    run_cli: RunCli,
    tmp_path: Path,
    http_serve: HTTPServe,
    body: bytes,
    headers: dict[str, str | None],
    message: str,
) -> None:
    url = http_serve.add("thing.yaml", body, headers=headers)
    app = tmp_path / "app"
    app.mkdir()
    (app / "kustomization.yaml").write_text(f"resources: ['{url}']\n")
    result = run_cli("images", str(app), "--format", "json", "--allow-remote-bases")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (error,) = json.loads(result.stdout)["errors"]
    assert message in error["message"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        # urlsplit() parses it but its .port raises ValueError (redacting it once crashed).
        ("http://127.0.0.1:99999/deploy.yaml", "fetching {url} failed: ConnectError"),
        # urlsplit() itself raises ValueError.
        ("http://[127.0.0.1/deploy.yaml", "resources[0]: remote base {url} is not a valid URL"),
    ],
)
def test_malformed_remote_url_is_an_error_not_a_crash(
    run_cli: RunCli, tmp_path: Path, url: str, message: str
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "kustomization.yaml").write_text(f"resources: ['{url}']\n")
    refused = run_cli("images", str(app), "--format", "json")
    fetched = run_cli("images", str(app), "--format", "json", "--allow-remote-bases")
    for result in (refused, fetched):
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
    (error,) = json.loads(refused.stdout)["errors"]
    assert error["message"].startswith(
        f"kustomization.yaml: resources[0]: remote base {url} is not proven"
    )
    (error,) = json.loads(fetched.stdout)["errors"]
    assert error["message"] == "kustomization.yaml: " + message.format(url=url)


def test_remote_file_in_other_fields_is_refused(
    run_cli: RunCli, tmp_path: Path, http_serve: HTTPServe
) -> None:
    url = http_serve.add("patch.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    (app / "kustomization.yaml").write_text(f"resources: [cm.yaml]\npatches: [{{path: '{url}'}}]\n")
    result = run_cli("images", str(app), "--format", "json", "--allow-remote-bases")
    assert result.returncode == 2, result.stderr
    (error,) = json.loads(result.stdout)["errors"]
    assert error["message"].startswith("kustomization.yaml: patches[0].path: remote file")
    assert sum(http_serve.requests.values()) == 0


def test_duplicate_kustomization_is_exit_2_even_when_findings_block(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["vulnerable"])
    blocked, _ = _scan(run_cli, fleet, gate_dbs["osv"])
    assert blocked.returncode == 1  # the findings alone block
    # A second, different flux-system/apps in the same cluster (two clusters may share names).
    (fleet / "clusters" / "test" / "apps2.yaml").write_text(FLUX_KS.replace("./apps", "./other"))
    (fleet / "other").mkdir()
    (fleet / "other" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
    )
    result, _ = _scan(run_cli, fleet, gate_dbs["osv"])
    assert result.returncode == 2, result.stderr
    assert "Kustomization flux-system/apps is defined twice" in result.stderr
    assert "clusters/test/apps.yaml:1" in result.stderr
    assert "clusters/test/apps2.yaml:1" in result.stderr


def test_duplicate_found_while_walking_is_exit_2(run_cli: RunCli, tmp_path: Path) -> None:
    # flux-system/infra is a root in clusters/ and also rendered by flux-system/apps.
    fleet = write_fleet(tmp_path / "fleet", "registry.example/web:1")
    infra = FLUX_KS.replace("name: apps", "name: infra")
    (fleet / "clusters" / "test" / "infra.yaml").write_text(infra.replace("./apps", "./infra"))
    (fleet / "apps" / "infra.yaml").write_text(infra.replace("./apps", "./infra2"))
    for name in ("infra", "infra2"):
        (fleet / name).mkdir()
        (fleet / name / "cm.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n"
        )
    result = run_cli("images", str(fleet), "--format", "json")
    assert result.returncode == 2, result.stderr
    assert "Kustomization flux-system/infra is defined twice" in result.stderr
    assert "clusters/test/infra.yaml:1" in result.stderr and "apps/infra.yaml:1" in result.stderr


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "render:\n  allowRemoteBases: yes-please\n",
            "render.allowRemoteBases must be true or false",
        ),
        ("render:\n  fetchEverything: true\n", "unknown key render.fetchEverything"),
    ],
)
def test_render_config_is_validated(
    run_cli: RunCli, tmp_path: Path, body: str, message: str
) -> None:
    config = tmp_path / "kubegate.yaml"
    config.write_text(body)
    (tmp_path / "src").mkdir()
    result = run_cli("scan", str(tmp_path / "src"), "--config", str(config), "--skip-db-update")
    assert result.returncode == 3, result.stderr
    assert f"kubegate: error: {config}: {message}" in result.stderr
