"""Helm and registry settings shared by scan, watch and images: flags over the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubegate.cli import build_parser
from kubegate.cli.revision_options import (
    DEFAULT_KUBE_VERSION,
    allowed_registries,
    configured_registry_options,
    configured_request,
    helm_options,
    parse_values_from,
)
from kubegate.config import Config, load_config, parse_api_versions, parse_kube_version
from kubegate.errors import ConfigError, UsageError
from kubegate.render.fetch import HelmOptions
from kubegate.render.valuesfrom import read_values_file
from kubegate.scan import RevisionRequest
from kubegate.source import SourceSpec
from kubegate.transfer import TransferLimits


def _config(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "kubegate.yaml"
    path.write_text(text)
    return load_config(path)


def test_default_kube_version_is_the_contracts() -> None:
    assert HelmOptions().kube_version == DEFAULT_KUBE_VERSION


@pytest.mark.parametrize("command", ["scan", "images", "watch"])
def test_defaults_without_flags_or_config(command: str) -> None:
    args = build_parser().parse_args([command, "src"])
    assert helm_options(args, Config()) == HelmOptions()


def test_config_helm_section(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "helm").write_text("")
    config = _config(
        tmp_path,
        "helm:\n  path: bin/helm\n  kubeVersion: v1.31.2\n"
        "  apiVersions: [monitoring.coreos.com/v1, v1]\n",
    )
    assert config.helm.path == tmp_path / "bin" / "helm"  # relative to the file
    assert ("helm.path", tmp_path / "bin" / "helm") in config.named_paths()
    args = build_parser().parse_args(["images", "src"])
    options = helm_options(args, config)
    assert options.path == str(tmp_path / "bin" / "helm")
    assert options.kube_version == "v1.31.2"
    assert options.api_versions == ("monitoring.coreos.com/v1", "v1")


def test_flags_win_over_the_config_and_api_versions_add_up(tmp_path: Path) -> None:
    config = _config(tmp_path, "helm:\n  kubeVersion: 1.30.0\n  apiVersions: [v1]\n")
    args = build_parser().parse_args(
        [
            "scan",
            "src",
            "--kube-version",
            "1.33",
            "--api-versions",
            "cert-manager.io/v1,v1",
            "--api-versions",
            "gateway.networking.k8s.io/v1/HTTPRoute",
        ]
    )
    options = helm_options(args, config)
    assert options.kube_version == "1.33"
    assert options.api_versions == (
        "v1",
        "cert-manager.io/v1",
        "gateway.networking.k8s.io/v1/HTTPRoute",
    )


def test_values_from_files(tmp_path: Path) -> None:
    cm = tmp_path / "cm.yaml"
    cm.write_text("values.yaml: |\n  replicaCount: 2\nextra.yaml: 'a: b'\n")
    secret = tmp_path / "secret.yaml"
    secret.write_text("values.yaml: 'password: hunter2'\n")
    args = build_parser().parse_args(
        [
            "watch",
            "file:///repo",
            "--values-from",
            f"apps/ConfigMap/web-values={cm}",
            "--values-from",
            f"apps/Secret/web-secret={secret}",
        ]
    )
    options = helm_options(args, Config())
    assert options.values_from == {
        "apps/ConfigMap/web-values": cm,
        "apps/Secret/web-secret": secret,
    }
    assert read_values_file(cm) == {"values.yaml": "replicaCount: 2\n", "extra.yaml": "a: b"}


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("apps/ConfigMap/web", "expected NS/KIND/NAME=FILE"),
        ("apps/web={file}", "expected NS/KIND/NAME=FILE"),
        ("apps//web={file}", "expected NS/KIND/NAME=FILE"),
        ("a/b/ConfigMap/web={file}", "expected NS/KIND/NAME=FILE"),
        ("apps/ConfigMap/web=", "expected NS/KIND/NAME=FILE"),
        ("apps/configmap/web={file}", "KIND must be ConfigMap or Secret"),
    ],
)
def test_bad_values_from_syntax(tmp_path: Path, value: str, needle: str) -> None:
    file = tmp_path / "v.yaml"
    file.write_text("values.yaml: 'a: 1'\n")
    with pytest.raises(UsageError) as caught:
        parse_values_from(value.format(file=file))
    assert caught.value.where == "--values-from"
    assert needle in caught.value.message


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "cannot read values file"),
        ("- a\n- b\n", "expected a mapping of data keys to text values"),
        ("values.yaml:\n  replicaCount: 2\n", "values.yaml: expected a text value"),
        ("count: 3\n", "count: expected a text value (a string or a `|` block), got int"),
        ("'bad key': x\n", "invalid data key 'bad key'"),
        ("a: [\n", "invalid YAML: line 2"),
    ],
)
def test_bad_values_from_files(tmp_path: Path, content: str | None, needle: str) -> None:
    file = tmp_path / "v.yaml"
    if content is not None:
        file.write_text(content)
    with pytest.raises(ConfigError) as caught:
        parse_values_from(f"apps/Secret/web={file}")
    text = caught.value.diagnostics()
    assert text.startswith("--values-from apps/Secret/web: ")
    assert needle in text
    assert "\n" not in text


@pytest.mark.parametrize("good", ["1.35.0", "v1.35", "1.35", "1.30.0-rc.1", "v1.30.0+k3s1", "0.1"])
def test_kube_versions_accepted(good: str) -> None:
    assert parse_kube_version(good) == good


@pytest.mark.parametrize("bad", ["x.y", "1", "", "01.2", "V1.2", "1.35.0 junk", "1..2", "1.a"])
def test_kube_versions_refused(bad: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_kube_version(bad)
    assert caught.value.where == "--kube-version"


@pytest.mark.parametrize(
    "bad", ["foo", "apps/", "/v1", "Apps/v1", "apps/v1/", "apps/v1/Kind/x", "apps/1", "a,,b"]
)
def test_api_versions_refused(bad: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_api_versions([bad])
    assert caught.value.where == "--api-versions"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("helm:\n  kubeVersion: x.y\n", "helm.kubeVersion: invalid Kubernetes version 'x.y'"),
        ("helm:\n  apiVersions: [nope]\n", "helm.apiVersions: invalid API version 'nope'"),
        ("helm:\n  apiVersions: v1\n", "helm.apiVersions must be a list of strings"),
        ("helm:\n  version: 1\n", "unknown key helm.version"),
        ("helm: [1]\n", "helm must be a mapping"),
    ],
)
def test_bad_helm_config(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, text)
    assert caught.value.where == str(tmp_path / "kubegate.yaml")
    assert needle in caught.value.message


def test_missing_helm_path(tmp_path: Path) -> None:
    config = _config(tmp_path, "helm:\n  path: no/helm\n")
    with pytest.raises(ConfigError, match=r"helm\.path: no such file"):
        helm_options(build_parser().parse_args(["images"]), config)


def test_images_takes_the_registry_options_and_config_of_scan(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "registry:\n  insecureRegistries: [reg.internal:5000]\n"
        "  allowedRegistries: [ghcr.io]\nsources:\n  apps/team: https://git.example/team.git\n"
        "render:\n  allowRemoteBases: true\n",
    )
    for command in ("images", "scan"):
        args = build_parser().parse_args(
            [
                command,
                "src",
                "--insecure-registry",
                "127.0.0.1:5001",
                "--registry-mirror",
                "docker.io=mirror.internal",
            ]
        )
        options = configured_registry_options(args, config, TransferLimits())
        assert options.insecure_registries == {"127.0.0.1:5001", "reg.internal:5000"}
        assert options.mirrors == {"docker.io": "mirror.internal"}
        assert allowed_registries(args, config) == {"ghcr.io"}
        request = configured_request(RevisionRequest(SourceSpec(location="src")), args, config)
        assert request.allow_remote_bases
        assert request.sources["apps/team"] == SourceSpec(location="https://git.example/team.git")
        assert request.helm == HelmOptions()
    flagged = build_parser().parse_args(["images", "--allowed-registries", "quay.io,ghcr.io"])
    assert allowed_registries(flagged, config) == {"quay.io", "ghcr.io"}
