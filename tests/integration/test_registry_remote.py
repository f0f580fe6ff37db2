"""The registry client against real Debian ``docker-registry`` servers in all four modes."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from kubegate.errors import RegistryAuthError, RegistryError
from kubegate.images.reference import parse_reference
from kubegate.models import Platform
from kubegate.registry import RegistryClient, RegistryOptions, open_image
from kubegate.registry.manifest import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from tests.fixtures.oci import build_attestation, build_image, build_index, layer_blob
from tests.fixtures.registry import PASSWORD, RegistryServer

LAYERS = (
    layer_blob({"etc/os-release": b"ID=debian\nVERSION_ID=12\n"}),
    layer_blob({"usr/share/doc/hello/copyright": b"hello\n" * 1000}),
)
IMAGE = build_image(LAYERS)


def client_for(server: RegistryServer, tmp_path: Path, **options: object) -> RegistryClient:
    config = tmp_path / "docker"
    if server.username:
        server.docker_config(config)
    return RegistryClient(
        RegistryOptions(ca_file=server.ca_file, docker_config=config / "config.json", **options)  # type: ignore[arg-type]
    )


@pytest.fixture(params=["plain", "basic", "tls", "token"])
def any_registry(request: pytest.FixtureRequest) -> RegistryServer:
    server: RegistryServer = request.getfixturevalue(f"registry_{request.param}")
    return server


def test_resolve_fetch_and_stream_in_every_mode(
    any_registry: RegistryServer, tmp_path: Path
) -> None:
    digest = any_registry.push("team/app", "1.0", IMAGE)
    reference = any_registry.ref("team/app", "1.0")
    with client_for(any_registry, tmp_path) as client:
        assert client.resolve_digest(parse_reference(reference)) == digest
        image = open_image(reference, client)
        assert image.reference == reference
        assert image.digest == digest
        assert image.media_type == OCI_MANIFEST
        (only,) = image.platforms
        assert only.platform == Platform("linux", "amd64")
        assert only.manifest_digest == digest
        assert only.config.digest == IMAGE.config.digest
        assert only.config_json["rootfs"]["type"] == "layers"
        assert [layer.digest for layer in only.layers] == [b.digest for b in LAYERS]
        for descriptor, blob in zip(only.layers, LAYERS, strict=True):
            with image.open_blob(descriptor) as stream:
                parts = []
                while chunk := stream.read(1000):
                    parts.append(chunk)
            assert b"".join(parts) == blob.data
        # By digest: the same image, pinned.
        pinned = open_image(f"{any_registry.host}/team/app@{digest}", client)
        assert pinned.digest == digest


def test_missing_tag_is_one_clear_line(registry_plain: RegistryServer, tmp_path: Path) -> None:
    reference = registry_plain.ref("team/absent", "9")
    with client_for(registry_plain, tmp_path) as client, pytest.raises(RegistryError) as info:
        open_image(reference, client)
    assert info.value.diagnostics() == f"{reference}: manifest unknown (404)"
    with client_for(registry_plain, tmp_path) as client, pytest.raises(RegistryError) as info:
        client.resolve_digest(parse_reference(reference))
    assert info.value.diagnostics() == f"{reference}: manifest unknown (404)"


def test_multi_arch_index_selects_linux_platforms(
    registry_plain: RegistryServer, tmp_path: Path
) -> None:
    amd64 = build_image(LAYERS[:1], architecture="amd64")
    arm64 = build_image(LAYERS[1:], architecture="arm64", variant="v8")
    windows = build_image(LAYERS[:1], os="windows", architecture="amd64")
    index = build_index([amd64, arm64, windows, build_attestation(amd64)])
    digest = registry_plain.push("team/multi", "1", index)
    reference = registry_plain.ref("team/multi", "1")
    with client_for(registry_plain, tmp_path) as client:
        image = open_image(reference, client)
    assert image.digest == digest
    assert image.media_type == OCI_INDEX
    assert [str(p.platform) for p in image.platforms] == ["linux/amd64", "linux/arm64/v8"]
    assert [p.manifest_digest for p in image.platforms] == [amd64.digest, arm64.digest]

    wanted = (Platform("linux", "arm64"),)  # no variant: matches v8
    with client_for(registry_plain, tmp_path, platforms=wanted) as client:
        image = open_image(reference, client)
    assert [p.manifest_digest for p in image.platforms] == [arm64.digest]
    assert image.platforms[0].layers[0].digest == LAYERS[1].digest

    with client_for(registry_plain, tmp_path, platforms=(Platform("linux", "s390x"),)) as client:
        with pytest.raises(RegistryError, match=r"platform linux/s390x not in index \(offers: "):
            open_image(reference, client)


def test_docker_schema2_and_manifest_list(registry_plain: RegistryServer, tmp_path: Path) -> None:
    layers = [layer_blob({"etc/issue": b"Debian\n"}, docker=True)]
    amd64 = build_image(layers, docker=True)
    arm = build_image(layers, architecture="arm", variant="v7", docker=True)
    single = registry_plain.push("team/docker", "single", amd64)
    listed = registry_plain.push("team/docker", "list", build_index([amd64, arm], docker=True))
    with client_for(registry_plain, tmp_path) as client:
        image = open_image(registry_plain.ref("team/docker", "single"), client)
        assert (image.digest, image.media_type) == (single, DOCKER_MANIFEST)
        assert image.platforms[0].config.media_type == amd64.config.media_type
        image = open_image(registry_plain.ref("team/docker", "list"), client)
    assert (image.digest, image.media_type) == (listed, DOCKER_LIST)
    assert [str(p.platform) for p in image.platforms] == ["linux/amd64", "linux/arm/v7"]


def test_token_auth_caches_token_per_scope(registry_token: RegistryServer, tmp_path: Path) -> None:
    tokens = registry_token.token_server
    assert tokens is not None
    registry_token.push("team/cached", "1", IMAGE)
    before = len(tokens.requests)
    with client_for(registry_token, tmp_path) as client:
        open_image(registry_token.ref("team/cached", "1"), client)
        open_image(registry_token.ref("team/cached", "1"), client)
    fetched = tokens.requests[before:]
    assert len(fetched) == 1
    query, had_credentials = fetched[0]
    assert query["scope"] == ["repository:team/cached:pull"]
    assert query["service"] == ["kubegate-test-registry"]
    assert had_credentials


def test_token_auth_without_credentials_is_auth_error(
    registry_token: RegistryServer, tmp_path: Path
) -> None:
    registry_token.push("team/private", "1", IMAGE)
    options = RegistryOptions(docker_config=tmp_path / "none.json")
    with RegistryClient(options) as client, pytest.raises(RegistryAuthError) as info:
        open_image(registry_token.ref("team/private", "1"), client)
    assert info.value.where == registry_token.ref("team/private", "1")
    assert "401" in info.value.message
    assert info.value.exit_code == 2


def test_credentials_from_docker_config_env(
    registry_basic: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry_basic.push("team/env", "1", IMAGE)
    registry_basic.docker_config(tmp_path / "cfg", style="userpass")  # key with scheme and path
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    with RegistryClient() as client:
        assert open_image(registry_basic.ref("team/env", "1"), client).digest == IMAGE.digest
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    with RegistryClient() as client, pytest.raises(RegistryAuthError, match="no credentials"):
        open_image(registry_basic.ref("team/env", "1"), client)


def test_rejected_password_never_shown_or_logged(
    registry_basic: RegistryServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry_basic.push("team/secret", "1", IMAGE)
    wrong = "Wr0ng-" + PASSWORD
    entry = {"username": "kubegate", "password": wrong}
    (tmp_path / "config.json").write_text(json.dumps({"auths": {registry_basic.host: entry}}))
    caplog.set_level(logging.DEBUG)
    with RegistryClient(RegistryOptions(docker_config=tmp_path / "config.json")) as client:
        with pytest.raises(RegistryAuthError) as info:
            open_image(registry_basic.ref("team/secret", "1"), client)
    text = info.value.diagnostics()
    assert text == f"{registry_basic.ref('team/secret', '1')}: credentials rejected (401)"
    encoded = base64.b64encode(f"kubegate:{wrong}".encode()).decode()
    for secret in (wrong, encoded):
        assert secret not in text
        assert secret not in caplog.text
        assert secret not in repr(info.value.__cause__)
    assert "kubegate.registry" in caplog.text  # the client did log its requests


def test_tls_needs_the_ca(registry_tls: RegistryServer, tmp_path: Path) -> None:
    registry_tls.push("team/tls", "1", IMAGE)
    with RegistryClient(RegistryOptions(retries=0)) as client, pytest.raises(RegistryError) as info:
        open_image(registry_tls.ref("team/tls", "1"), client)
    # The HTTP fallback met a TLS server: the HTTPS certificate error is what is reported.
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.message
    assert info.value.where == registry_tls.ref("team/tls", "1")


def test_loopback_falls_back_to_plain_http(
    registry_plain: RegistryServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry_plain.push("team/plain", "1", IMAGE)
    caplog.set_level(logging.DEBUG, logger="kubegate.registry")
    with RegistryClient() as client:
        image = open_image(registry_plain.ref("team/plain", "1"), client)
    assert image.digest == IMAGE.digest
    assert f"ping https://{registry_plain.host} failed" in caplog.text
    assert "using plain HTTP" in caplog.text
    # localhost is loopback too.
    with RegistryClient() as client:
        port = registry_plain.host.rsplit(":", 1)[1]
        assert open_image(f"localhost:{port}/team/plain:1", client).digest == IMAGE.digest


@pytest.mark.parametrize("mode", ["plain", "tls"])
def test_tag_lookups_reuse_one_connection(
    mode: str, request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A warm scan makes one HEAD per tag: they must not each open a TCP (and TLS) connection."""
    server: RegistryServer = request.getfixturevalue(f"registry_{mode}")
    tags = [f"keepalive-{n}" for n in range(5)]
    for tag in tags:
        server.push("team/keepalive", tag, IMAGE)
    caplog.set_level(logging.DEBUG, logger="httpcore.connection")

    def connections() -> int:
        return sum("connect_tcp.started" in r.getMessage() for r in caplog.records)

    with client_for(server, tmp_path) as client:
        first = client.resolve_digest(parse_reference(server.ref("team/keepalive", tags[0])))
        opened = connections()
        digests = {
            client.resolve_digest(parse_reference(server.ref("team/keepalive", tag)))
            for tag in tags[1:]
        }
    assert digests == {first} == {IMAGE.digest}
    assert opened >= 1
    assert connections() == opened, "each HEAD opened a new connection"


@pytest.mark.parametrize(("mode", "expected"), [("plain", 2), ("tls", 1)])
def test_ping_connection_is_reused(
    mode: str,
    expected: int,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The ``/v2/`` ping's connection serves the first real request (a WAN round trip or a TLS
    handshake less per registry and scan). Plain: the refused HTTPS probe, then one connection."""
    server: RegistryServer = request.getfixturevalue(f"registry_{mode}")
    server.push("team/ping", "1", IMAGE)
    caplog.set_level(logging.DEBUG, logger="httpcore.connection")
    with client_for(server, tmp_path) as client:
        digest = client.resolve_digest(parse_reference(server.ref("team/ping", "1")))
    assert digest == IMAGE.digest
    assert sum("connect_tcp.started" in r.getMessage() for r in caplog.records) == expected
