"""Registry client behaviour a real registry will not produce: scripted HTTP servers on loopback.

Schema1 and unknown media types, oversized manifests, digest mismatches, redirects to another
host (credentials must not follow), 429/503 with ``Retry-After``, silent and absent servers.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubegate.errors import RegistryAuthError, RegistryError
from kubegate.images.reference import parse_reference
from kubegate.registry import RegistryClient, RegistryOptions, open_image
from tests.fixtures.oci import Blob, BuiltImage, build_image, canonical_json, layer_blob
from tests.fixtures.registry import PASSWORD, USER, Reply, ScriptedServer, Seen, free_port

Start = Callable[..., ScriptedServer]
IMAGE = build_image([layer_blob({"etc/os-release": b"ID=debian\n"})])
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def registry_route(
    image: BuiltImage,
    *,
    manifest: Blob | None = None,
    blobs: dict[str, bytes] | None = None,
    require: str | None = None,
    blob_redirect: str | None = None,
    headers: dict[str, str] | None = None,
) -> Callable[[Seen], Reply]:
    """Serve ``image`` as ``app:1`` (manifest and blobs overridable), optionally behind Basic."""
    top = manifest or image.manifest
    content = {blob.digest: blob.data for blob in image.blobs}
    content.update(blobs or {})

    def route(seen: Seen) -> Reply:
        if require and seen.headers.get("authorization") != require:
            return Reply(401, b"{}", {"WWW-Authenticate": 'Basic realm="test"'})
        if seen.path == "/v2/":
            return Reply(200, b"{}")
        if seen.path == "/v2/app/manifests/1" or seen.path.startswith("/v2/app/manifests/sha"):
            return Reply(200, top.data, {"Content-Type": top.media_type, **(headers or {})})
        if seen.path.startswith("/v2/app/blobs/"):
            digest = seen.path.rsplit("/", 1)[1]
            if blob_redirect:
                return Reply(307, b"", {"Location": f"{blob_redirect}/storage/{digest}?sig=xyz"})
            if digest in content:
                return Reply(200, content[digest])
        return Reply(404, b'{"errors":[{"code":"NOT_FOUND","message":"not found"}]}')

    return route


@pytest.fixture
def start(scripted_server: Start) -> Start:
    return scripted_server


def options(tmp_path: Path, **extra: object) -> RegistryOptions:
    return RegistryOptions(docker_config=tmp_path / "none.json", **extra)  # type: ignore[arg-type]


def test_schema1_refused(start: Start, tmp_path: Path) -> None:
    schema1 = Blob(
        canonical_json({"schemaVersion": 1, "name": "app", "fsLayers": []}),
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    )
    server = start(registry_route(IMAGE, manifest=schema1))
    with RegistryClient(options(tmp_path)) as client, pytest.raises(RegistryError) as info:
        open_image(f"{server.host}/app:1", client)
    assert info.value.where == f"{server.host}/app:1"
    assert "schema1 manifests are deprecated and not supported" in info.value.message


def test_unknown_media_type_and_artifacts_refused(start: Start, tmp_path: Path) -> None:
    odd = Blob(
        canonical_json({"schemaVersion": 2, "mediaType": "application/vnd.example+json"}),
        "application/vnd.example+json",
    )
    server = start(registry_route(IMAGE, manifest=odd))
    with RegistryClient(options(tmp_path)) as client:
        with pytest.raises(RegistryError, match="unsupported manifest media type"):
            open_image(f"{server.host}/app:1", client)
    helm = Blob(
        canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.cncf.helm.config.v1+json",
                    "digest": IMAGE.config.digest,
                    "size": IMAGE.config.size,
                },
                "layers": [],
            }
        ),
        "application/vnd.oci.image.manifest.v1+json",
    )
    server = start(registry_route(IMAGE, manifest=helm))
    with RegistryClient(options(tmp_path)) as client:
        with pytest.raises(RegistryError, match="not a container image"):
            open_image(f"{server.host}/app:1", client)


def test_oversized_manifest_refused(start: Start, tmp_path: Path) -> None:
    huge = Blob(
        b'{"schemaVersion":2,"pad":"' + b"x" * (4 * 1024 * 1024) + b'"}',
        "application/vnd.oci.image.manifest.v1+json",
    )
    server = start(registry_route(IMAGE, manifest=huge))
    with RegistryClient(options(tmp_path)) as client:
        with pytest.raises(RegistryError, match="exceeds the 4194304-byte limit"):
            open_image(f"{server.host}/app:1", client)


def test_manifest_digest_mismatch(start: Start, tmp_path: Path) -> None:
    lie = {"Docker-Content-Digest": "sha256:" + "0" * 64}
    server = start(registry_route(IMAGE, headers=lie))
    with RegistryClient(options(tmp_path)) as client:
        with pytest.raises(RegistryError, match="manifest digest mismatch"):
            open_image(f"{server.host}/app:1", client)
        with pytest.raises(RegistryError, match="manifest digest mismatch"):
            open_image(f"{server.host}/app@sha256:{'1' * 64}", client)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "blob digest mismatch"),
        (lambda data: data + b"extra", "longer than its declared"),
        (lambda data: data[:-3], "truncated"),
    ],
)
def test_blob_tampering_detected_on_read(
    start: Start, tmp_path: Path, tamper: Callable[[bytes], bytes], message: str
) -> None:
    layer = IMAGE.layers[0]
    server = start(registry_route(IMAGE, blobs={layer.digest: tamper(layer.data)}))
    with RegistryClient(options(tmp_path)) as client:
        image = open_image(f"{server.host}/app:1", client)
        with pytest.raises(RegistryError, match=message) as info:
            with image.open_blob(image.platforms[0].layers[0]) as stream:
                stream.read()
    assert info.value.where == f"{server.host}/app:1"


def test_config_digest_mismatch(start: Start, tmp_path: Path) -> None:
    bad = IMAGE.config.data.replace(b"amd64", b"arm64")
    server = start(registry_route(IMAGE, blobs={IMAGE.config.digest: bad}))
    with RegistryClient(options(tmp_path)) as client:
        with pytest.raises(RegistryError, match="image config digest mismatch"):
            open_image(f"{server.host}/app:1", client)


def test_credentials_not_sent_to_redirect_target(
    start: Start, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    content = {blob.digest: blob.data for blob in IMAGE.blobs}
    storage = start(lambda seen: Reply(200, content[seen.path.split("?")[0].rsplit("/", 1)[1]]))
    # Another origin: another host name (localhost) and port than the registry's 127.0.0.1.
    target = f"http://localhost:{storage.port}"
    server = start(registry_route(IMAGE, require=BASIC, blob_redirect=target))
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"auths": {server.host: {"username": USER, "password": PASSWORD}}})
    )
    caplog.set_level(logging.DEBUG)
    with RegistryClient(RegistryOptions(docker_config=config)) as client:
        image = open_image(f"{server.host}/app:1", client)
        with image.open_blob(image.platforms[0].layers[0]) as stream:
            assert stream.read() == IMAGE.layers[0].data
    assert [s.path.split("?")[0] for s in storage.seen] == [
        f"/storage/{IMAGE.config.digest}",
        f"/storage/{IMAGE.layers[0].digest}",
    ]
    assert all("authorization" not in s.headers for s in storage.seen)
    assert any(s.headers.get("authorization") == BASIC for s in server.seen)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("kubegate"))
    assert "redirected to http://localhost" in ours
    # Pre-signed query strings are not logged, by kubegate or httpx (httpcore's DEBUG traces
    # print raw response headers: the CLI keeps that logger at WARNING).
    shown = [r.getMessage() for r in caplog.records if not r.name.startswith("httpcore")]
    assert not any("sig=xyz" in message for message in shown)
    assert any(r.name == "httpx" and "localhost" in r.getMessage() for r in caplog.records)
    for secret in (PASSWORD, BASIC.split()[1]):
        assert secret not in caplog.text


def test_retry_after_honoured_on_503_and_429(start: Start, tmp_path: Path) -> None:
    answers = iter([Reply(503, b"", {"Retry-After": "1"}), Reply(429, b"", {"Retry-After": "0"})])
    ok = registry_route(IMAGE)

    def route(seen: Seen) -> Reply:
        if seen.path == "/v2/app/manifests/1":
            answer = next(answers, None)
            if answer is not None:
                return answer
        return ok(seen)

    server = start(route)
    began = time.monotonic()
    with RegistryClient(options(tmp_path, backoff=0.01)) as client:
        image = open_image(f"{server.host}/app:1", client)
    assert image.digest == IMAGE.digest
    assert time.monotonic() - began >= 1.0
    assert [s.path for s in server.seen].count("/v2/app/manifests/1") == 3


def test_retry_after_is_bounded_and_retries_end(start: Start, tmp_path: Path) -> None:
    def route(seen: Seen) -> Reply:
        if seen.path == "/v2/":
            return Reply(200, b"{}")
        return Reply(503, b"", {"Retry-After": "3600"})

    server = start(route)
    began = time.monotonic()
    with RegistryClient(options(tmp_path, retries=2, max_retry_after=0.1)) as client:
        with pytest.raises(RegistryError) as info:
            open_image(f"{server.host}/app:1", client)
    assert time.monotonic() - began < 3
    assert info.value.message == "unexpected HTTP status for manifest (503)"
    assert [s.path for s in server.seen].count("/v2/app/manifests/1") == 3


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_silent_registry_times_out(silent_port: int, tmp_path: Path) -> None:
    began = time.monotonic()
    with RegistryClient(options(tmp_path, timeout=0.3, retries=0)) as client:
        with pytest.raises(RegistryError, match=r"timed out after 0.3s") as info:
            open_image(f"127.0.0.1:{silent_port}/app:1", client)
    assert time.monotonic() - began < 3
    assert info.value.where == f"127.0.0.1:{silent_port}/app:1"


def test_registry_down(tmp_path: Path) -> None:
    port = free_port()
    with RegistryClient(options(tmp_path, retries=1, backoff=0.01)) as client:
        with pytest.raises(RegistryError, match="cannot reach") as info:
            open_image(f"127.0.0.1:{port}/app:1", client)
    assert info.value.exit_code == 2
    assert "\n" not in info.value.diagnostics()


def test_basic_challenge_without_credentials(start: Start, tmp_path: Path) -> None:
    server = start(registry_route(IMAGE, require=BASIC))
    with RegistryClient(options(tmp_path)) as client:
        with pytest.raises(RegistryAuthError, match="no credentials"):
            open_image(f"{server.host}/app:1", client)


def test_bearer_access_token_field_and_expiry(start: Start, tmp_path: Path) -> None:
    issued: list[str] = []

    def tokens(seen: Seen) -> Reply:
        issued.append(seen.path)
        body = json.dumps({"access_token": f"tok{len(issued)}", "expires_in": 1}).encode()
        return Reply(200, body, {"Content-Type": "application/json"})

    token_server = start(tokens)
    serve = registry_route(IMAGE)

    def route(seen: Seen) -> Reply:
        if not seen.headers.get("authorization", "").startswith("Bearer tok"):
            challenge = (
                f'Bearer realm="http://{token_server.host}/token",service="fake",'
                'scope="repository:app:pull"'
            )
            return Reply(401, b"{}", {"WWW-Authenticate": challenge})
        return serve(seen)

    server = start(route)
    with RegistryClient(options(tmp_path)) as client:
        open_image(f"{server.host}/app:1", client)
        assert len(issued) == 1
        assert "scope=repository%3Aapp%3Apull" in issued[0]
        assert "service=fake" in issued[0]
        open_image(f"{server.host}/app:1", client)
        assert len(issued) == 1  # cached
        time.sleep(1.1)
        open_image(f"{server.host}/app:1", client)
        assert len(issued) == 2  # expired, fetched again


def test_resolve_digest_head_then_get_fallback(start: Start, tmp_path: Path) -> None:
    serve = registry_route(IMAGE)

    def route(seen: Seen) -> Reply:
        reply = serve(seen)
        if seen.method == "HEAD" and seen.path == "/v2/app/manifests/1":
            # A registry that omits Docker-Content-Digest on HEAD.
            return Reply(200, b"", {"Content-Type": IMAGE.manifest.media_type})
        return reply

    server = start(route)
    with RegistryClient(options(tmp_path)) as client:
        ref = parse_reference(f"{server.host}/app:1")
        assert client.resolve_digest(ref) == IMAGE.digest
        pinned = parse_reference(f"{server.host}/app@{IMAGE.digest}")
        before = len(server.seen)
        assert client.resolve_digest(pinned) == IMAGE.digest
        assert len(server.seen) == before  # a digest reference needs no request
    manifest_requests = [(s.method, s.path) for s in server.seen if "/manifests/" in s.path]
    assert manifest_requests == [("HEAD", "/v2/app/manifests/1"), ("GET", "/v2/app/manifests/1")]
    assert all(
        s.headers["accept"].startswith("application/vnd.oci.image.index.v1+json")
        for s in server.seen
        if "/manifests/" in s.path
    )


def test_concurrent_requests_capped_per_registry(start: Start, tmp_path: Path) -> None:
    serve = registry_route(IMAGE)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def route(seen: Seen) -> Reply:
        if seen.path.startswith("/v2/app/blobs/"):
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            time.sleep(0.1)
            with lock:
                state["now"] -= 1
        return serve(seen)

    server = start(route)
    with RegistryClient(options(tmp_path, max_concurrency=2)) as client:
        image = open_image(f"{server.host}/app:1", client)
        layer = image.platforms[0].layers[0]
        errors: list[BaseException] = []

        def pull() -> None:
            try:
                with image.open_blob(layer) as stream:
                    assert stream.read() == IMAGE.layers[0].data
            except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=pull) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert state["peak"] == 2
