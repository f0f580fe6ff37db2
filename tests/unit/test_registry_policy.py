"""Pure parts of the registry client: credentials, challenges, platforms, transport policy."""

from __future__ import annotations

import base64
import json
import time
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from kubegate.errors import ConfigError, UsageError
from kubegate.models import Platform
from kubegate.registry import RegistryOptions, parse_platform
from kubegate.registry.auth import (
    Credentials,
    TokenCache,
    load_credentials,
    parse_challenges,
    registry_key,
)
from kubegate.registry.options import (
    compatible_platforms,
    normalize_platform,
    platform_matches,
)
from kubegate.registry.transport import (
    api_host,
    is_loopback,
    plain_http_allowed,
    redirect_allowed,
    retry_after,
    same_origin,
)


@pytest.mark.parametrize(
    ("key", "registry"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("docker.io", "docker.io"),
        ("https://ghcr.io", "ghcr.io"),
        ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
        ("Registry.Example.com:443", "registry.example.com:443"),
    ],
)
def test_registry_key(key: str, registry: str) -> None:
    assert registry_key(key) == registry


def test_load_credentials(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    auth = base64.b64encode(b"hub-user:hub:pass").decode()
    config.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": auth},
                    "127.0.0.1:5000": {"username": "u", "password": "p"},
                    "empty.example": {},
                }
            }
        )
    )
    assert load_credentials(config, "docker.io") == Credentials("hub-user", "hub:pass")
    assert load_credentials(config, "127.0.0.1:5000") == Credentials("u", "p")
    assert load_credentials(config, "empty.example") is None
    assert load_credentials(config, "other.example") is None
    assert load_credentials(tmp_path / "missing.json", "docker.io") is None
    assert "hub:pass" not in repr(load_credentials(config, "docker.io"))


def test_broken_docker_config_does_not_echo_secrets(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"auths": {"x.example": {"auth": "not base64 SECRET!"}}}')
    with pytest.raises(ConfigError) as info:
        load_credentials(config, "x.example")
    assert "SECRET" not in info.value.diagnostics()
    assert info.value.exit_code == 3
    config.write_text('{"auths": {"x.example": {"password": "SECRET"')
    with pytest.raises(ConfigError, match="not valid JSON") as info:
        load_credentials(config, "x.example")
    assert "SECRET" not in info.value.diagnostics()


def test_default_docker_config_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert RegistryOptions().docker_config_path() == tmp_path / "config.json"
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert RegistryOptions().docker_config_path() == tmp_path / "home/.docker/config.json"


def test_parse_challenges() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push", Basic realm="r"'
    )
    bearer, basic = parse_challenges(header)
    assert bearer.scheme == "bearer"
    assert bearer.realm == "https://auth.example/token"
    assert bearer.params["service"] == "registry.example"
    assert bearer.params["scope"] == "repository:a/b:pull,push"
    assert (basic.scheme, basic.realm) == ("basic", "r")
    assert parse_challenges("Negotiate abc") == ()


def test_token_cache_expiry() -> None:
    cache = TokenCache()
    cache.put(("r", "s", "scope", "u"), "tok", 3600)
    assert cache.get(("r", "s", "scope", "u")) == "tok"
    assert cache.get(("r", "s", "other", "u")) is None
    cache.put(("short",), "tok", 0.001)
    assert cache.get(("short",)) == "tok"  # at least a second of use
    cache._tokens[("short",)] = ("tok", time.monotonic() - 1)
    assert cache.get(("short",)) is None


def test_parse_platform() -> None:
    assert parse_platform("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert parse_platform("linux/amd64") == Platform("linux", "amd64")
    assert parse_platform("Linux/X86-64") == Platform("linux", "x86-64")
    # uname -m spellings are accepted from the user (never matched as index entries' names).
    assert parse_platform("linux/armv7l") == Platform("linux", "arm", "v7")
    assert parse_platform("linux/armv6l") == Platform("linux", "arm", "v6")
    for bad in ("linux", "linux/", "a/b/c/d", "linux amd64"):
        with pytest.raises(UsageError, match="expected os/arch"):
            parse_platform(bad)


# containerd/platforms database.go normalizeOS/normalizeArch, case by case.
@pytest.mark.parametrize(
    ("given", "normal"),
    [
        (("Linux", "AMD64", None), ("linux", "amd64", None)),
        (("linux", "x86_64", None), ("linux", "amd64", None)),
        (("linux", "x86-64", "v1"), ("linux", "amd64", None)),
        (("linux", "amd64", "v3"), ("linux", "amd64", "v3")),
        (("linux", "aarch64", None), ("linux", "arm64", None)),
        (("linux", "arm64", "v8"), ("linux", "arm64", None)),
        (("linux", "arm64", "8"), ("linux", "arm64", None)),
        (("linux", "arm64", "v8.0"), ("linux", "arm64", None)),
        (("linux", "arm64", "9.0"), ("linux", "arm64", "v9")),
        (("linux", "armhf", None), ("linux", "arm", "v7")),
        (("linux", "armel", None), ("linux", "arm", "v6")),
        (("linux", "arm", None), ("linux", "arm", "v7")),
        (("linux", "arm", "7"), ("linux", "arm", "v7")),
        (("linux", "arm", "6"), ("linux", "arm", "v6")),
        (("linux", "arm", "V5"), ("linux", "arm", "v5")),
        (("linux", "i386", "whatever"), ("linux", "386", None)),
        (("", "amd64", None), ("linux", "amd64", None)),
        (("macOS", "arm64", None), ("darwin", "arm64", None)),
        (("linux", "s390x", None), ("linux", "s390x", None)),
        (("linux", "armv7l", None), ("linux", "armv7l", None)),  # not a containerd alias
    ],
)
def test_normalize_platform_as_containerd(
    given: tuple[str, str, str | None], normal: tuple[str, str, str | None]
) -> None:
    assert normalize_platform(Platform(*given)) == Platform(*normal)


# containerd/platforms compare.go platformVector (what platforms.Only accepts), in order.
@pytest.mark.parametrize(
    ("node", "accepts"),
    [
        ("linux/amd64", ["linux/amd64", "linux/386"]),
        ("linux/amd64/v3", ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"]),
        ("linux/arm/v7", ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]),
        ("linux/arm", ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]),
        ("linux/arm/v5", ["linux/arm/v5"]),
        (
            "linux/arm64",
            ["linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"],
        ),
        (
            "linux/arm64/v8.2",
            ["linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64", "linux/arm/v8"],
        ),
        ("linux/arm64/v9", ["linux/arm64/v9", "linux/arm64/v8.5", "linux/arm64/v8.4"]),
        ("linux/arm64/v7", []),  # an unknown arm64 variant: containerd's vector is empty
        ("linux/s390x", ["linux/s390x"]),
    ],
)
def test_compatible_platforms_as_containerd_only(node: str, accepts: list[str]) -> None:
    vector = [str(p) for p in compatible_platforms(parse_platform(node))]
    assert vector[: len(accepts)] == accepts
    if not accepts or node in ("linux/amd64", "linux/arm/v5", "linux/s390x"):
        assert vector == accepts


@pytest.mark.parametrize(
    ("wanted", "offered", "matches"),
    [
        (("linux", "amd64"), ("Linux", "x86_64"), True),
        (("linux", "arm64"), ("linux", "arm64", "v8"), True),
        (("linux", "arm64", "v8"), ("linux", "aarch64"), True),
        (("linux", "arm"), ("linux", "armhf"), True),
        (("linux", "arm", "v7"), ("linux", "arm", "v6"), True),  # a v7 node runs v6
        (("linux", "arm", "v6"), ("linux", "arm", "v7"), False),
        (("linux", "arm64"), ("linux", "arm", "v7"), True),
        (("linux", "amd64"), ("linux", "arm64"), False),
        (("linux", "amd64"), ("windows", "amd64"), False),
        (("linux", "arm", "v7"), ("linux", "armv7l"), False),  # containerd would not pull it
    ],
)
def test_platform_matches(wanted: tuple[str, ...], offered: tuple[str, ...], matches: bool) -> None:
    assert platform_matches(Platform(*wanted), Platform(*offered)) is matches


def test_transport_policy() -> None:
    assert api_host("docker.io") == "registry-1.docker.io"
    assert api_host("127.0.0.1:5000") == "127.0.0.1:5000"
    for host in ("127.0.0.1:5000", "127.8.9.10", "localhost:80", "[::1]:5000", "::1"):
        assert is_loopback(host), host
        assert plain_http_allowed(host, frozenset())
    for host in ("registry.example:5000", "10.0.0.1", "192.168.1.1:443"):
        assert not is_loopback(host), host
        assert not plain_http_allowed(host, frozenset())
    assert plain_http_allowed("registry.example:5000", frozenset({"registry.example:5000"}))
    assert plain_http_allowed("registry.example:5000", frozenset({"registry.example"}))


def test_redirect_and_origin_policy() -> None:
    registry = httpx.URL("https://registry.example/v2/a/blobs/sha256:x")
    assert same_origin(registry, httpx.URL("https://registry.example/other"))
    assert not same_origin(registry, httpx.URL("https://registry.example:8443/other"))
    assert not same_origin(registry, httpx.URL("https://storage.example/blob"))
    assert not same_origin(registry, httpx.URL("http://registry.example/v2/"))
    assert redirect_allowed(registry, httpx.URL("https://storage.example/b"), frozenset())
    assert not redirect_allowed(registry, httpx.URL("http://storage.example/b"), frozenset())
    assert not redirect_allowed(registry, httpx.URL("file:///etc/passwd"), frozenset())
    assert redirect_allowed(registry, httpx.URL("http://127.0.0.1:9/b"), frozenset())


def test_retry_after() -> None:
    assert retry_after("2", 0.5, 10) == 2
    assert retry_after("3600", 0.5, 10) == 10
    assert retry_after(None, 0.5, 10) == 0.5
    assert retry_after("garbage", 0.5, 10) == 0.5
    soon = retry_after(formatdate(time.time() + 3, usegmt=True), 0.5, 10)
    assert 1 <= soon <= 3
    assert retry_after(formatdate(time.time() - 60, usegmt=True), 0.5, 10) == 0
