"""``kubegate scan --publish``: a passing revision becomes a Flux OCI artifact in the real
loopback registry, in ``flux push artifact``'s format (tests/fixtures/fluxartifact.py), and
nothing else is ever pushed. Images and advisories as in test_scan_cli.py; git sources are real
repositories; a failing registry is a loopback proxy in front of the real one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubegate.models import Descriptor, Digest, ImageRef
from kubegate.registry import RegistryClient, RegistryOptions
from kubegate.registry.verify import VerifyingReader
from kubegate.source.artifact import extract
from kubegate.source.limits import SourceLimits
from tests.conftest import RunCli
from tests.fixtures import fluxartifact as flux
from tests.fixtures.gatefleet import FIXED, VULNERABLE, fleet_repo, gate_layer, write_fleet
from tests.fixtures.gitserve import git
from tests.fixtures.oci import build_image
from tests.fixtures.registry import ForwardingProxy, RegistryServer, Reply, Seen


@pytest.fixture(scope="module")
def images(registry_plain: RegistryServer) -> dict[str, str]:
    registry_plain.push("pub/web", "vulnerable", build_image([gate_layer(*VULNERABLE)]))
    registry_plain.push("pub/web", "fixed", build_image([gate_layer(*FIXED)]))
    return {
        "vulnerable": registry_plain.ref("pub/web", "vulnerable"),
        "fixed": registry_plain.ref("pub/web", "fixed"),
    }


def _scan(run_cli: RunCli, source: str, db: Path, *args: str) -> Any:
    result = run_cli("scan", source, "--db", str(db), "-q", *args)
    assert "Traceback" not in result.stderr
    return result


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _extract_layer(data: bytes, dest: Path) -> Path:
    archive = dest.parent / f"{dest.name}.tar.gz"
    archive.write_bytes(data)
    dest.mkdir()
    extract(archive, dest, limits=SourceLimits(), label=str(archive))
    return dest


def test_pass_publishes_a_flux_artifact(
    run_cli: RunCli,
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    target = f"oci://{registry_plain.host}/pub/fleet"
    result = _scan(run_cli, str(fleet), gate_dbs["osv"], "--publish", target)
    assert result.returncode == 0, result.stderr
    assert "published oci://" in result.stderr
    with registry_plain.http() as client:
        assert flux.tags(client, "pub/fleet")[0] == "approved"
        (revision_tag,) = [t for t in flux.tags(client, "pub/fleet") if t != "approved"]
        approved = flux.fetch_artifact(client, "pub/fleet", "approved")
        by_revision = flux.fetch_artifact(client, "pub/fleet", revision_tag)
    assert approved["digest"] == by_revision["digest"]
    manifest, config = approved["manifest"], approved["config"]
    # Field by field against the format flux push artifact writes.
    assert list(manifest) == flux.MANIFEST_KEYS
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == flux.MANIFEST_MEDIA_TYPE
    assert manifest["config"]["mediaType"] == flux.CONFIG_MEDIA_TYPE
    assert all(list(d) == flux.DESCRIPTOR_KEYS for d in [manifest["config"], *manifest["layers"]])
    content, report = manifest["layers"]
    assert content["mediaType"] == flux.CONTENT_MEDIA_TYPE
    assert report["mediaType"] == "application/vnd.kubegate.report.v1+json"
    annotations = manifest["annotations"]
    assert set(flux.ANNOTATIONS) <= set(annotations)
    assert list(annotations) == sorted(annotations)
    assert re.fullmatch(flux.CREATED_PATTERN, annotations["org.opencontainers.image.created"])
    assert annotations["org.opencontainers.image.source"] == target
    # A directory: the revision is the tarball digest, the tag its first 12 hex.
    assert annotations["org.opencontainers.image.revision"] == content["digest"]
    assert revision_tag == "sha256-" + content["digest"].split(":")[1][:12]
    assert annotations["dev.kubegate.verdict"] == "PASS"
    assert re.fullmatch(flux.CREATED_PATTERN, annotations["dev.kubegate.db.updated"])
    assert approved["raw"] == json.dumps(manifest, separators=(",", ":")).encode()
    assert list(config) == flux.CONFIG_KEYS
    assert {k: config[k] for k in flux.CONFIG_EMPTY} == flux.CONFIG_EMPTY
    assert config["created"] == annotations["org.opencontainers.image.created"]
    assert config["history"] == [flux.HISTORY_ENTRY, flux.HISTORY_ENTRY]
    tarball, report_bytes = approved["layers"]
    assert tarball.startswith(flux.GZIP_HEADER)
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        members = tar.getmembers()
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(tarball)).hexdigest()
    assert config["rootfs"] == {"type": "layers", "diff_ids": [diff_id, report["digest"]]}
    assert members[0].name == "." and members[0].isdir()
    assert all((m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 0) for m in members)
    assert [m.name for m in members] == [
        ".", "apps", "apps/web.yaml", "clusters", "clusters/test", "clusters/test/apps.yaml",
    ]  # fmt: skip
    assert json.loads(report_bytes)["verdict"] == "PASS"


def test_same_tree_same_bytes_and_the_revision_tag_is_reused(
    run_cli: RunCli,
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    target = f"oci://{registry_plain.host}/pub/twice:live"
    first = _scan(run_cli, str(fleet), gate_dbs["osv"], "--publish", target)
    second = _scan(run_cli, str(fleet), gate_dbs["osv"], "--publish", target)
    assert first.returncode == second.returncode == 0, second.stderr
    with registry_plain.http() as client:
        assert "live" in flux.tags(client, "pub/twice")
        (revision_tag,) = [t for t in flux.tags(client, "pub/twice") if t != "live"]
        live = flux.fetch_artifact(client, "pub/twice", "live")
    # The second run built the same tarball; the per-revision tag kept its manifest.
    assert live["digest"] in first.stderr and live["digest"] in second.stderr
    assert revision_tag in second.stderr


def test_round_trip_through_kubegates_artifact_source(
    run_cli: RunCli,
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    (fleet / ".sourceignore").write_text("drafts/\n")
    (fleet / "drafts").mkdir()
    (fleet / "drafts" / "wip.yaml").write_text("kind: ConfigMap\n")
    (fleet / "apps" / "notes.md").write_text("# not a manifest, still shipped as Flux would\n")
    target = f"oci://{registry_plain.host}/pub/roundtrip"
    result = _scan(run_cli, str(fleet), gate_dbs["osv"], "--publish", target)
    assert result.returncode == 0, result.stderr
    with registry_plain.http() as client:
        manifest = flux.fetch_artifact(client, "pub/roundtrip", "approved")["manifest"]
    layer = manifest["layers"][0]
    descriptor = Descriptor(layer["mediaType"], Digest(layer["digest"]), layer["size"])
    ref = ImageRef(registry_plain.host, "pub/roundtrip")
    # Pulled with kubegate's registry client (digest verified), read by its artifact source.
    with (
        RegistryClient(RegistryOptions()) as client,
        client.open_blob(ref, descriptor, where="roundtrip") as chunks,
    ):
        reader = VerifyingReader(chunks, descriptor, where="roundtrip")
        data = reader.read()
    tree = _extract_layer(data, tmp_path / "pulled")
    # Exactly the judged tree: what the source layer kept (the ignored drafts/ are not in it).
    expected = {k: v for k, v in _files(fleet).items() if not k.startswith("drafts/")}
    assert "apps/notes.md" in expected
    assert _files(tree) == expected


def test_blocked_unproven_and_fail_open_push_nothing(
    run_cli: RunCli,
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
) -> None:
    target = f"oci://{registry_plain.host}/pub/never"
    blocked = write_fleet(tmp_path / "blocked", images["vulnerable"])
    result = _scan(run_cli, str(blocked), gate_dbs["osv"], "--publish", target)
    assert result.returncode == 1
    assert "not published" in result.stderr and "verdict BLOCKED" in result.stderr
    down = write_fleet(tmp_path / "down", "127.0.0.1:9/pub/web:1.0")
    result = _scan(run_cli, str(down), gate_dbs["osv"], "--publish", target)
    assert result.returncode == 2 and "verdict UNPROVEN" in result.stderr
    result = _scan(run_cli, str(down), gate_dbs["osv"], "--publish", target, "--fail-open")
    assert result.returncode == 0
    assert "not published" in result.stderr and "--fail-open" in result.stderr
    with registry_plain.http() as client:
        assert flux.tags(client, "pub/never") == []


def test_git_revision_names_the_tag_and_the_annotations(
    run_cli: RunCli,
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
) -> None:
    work, commit = fleet_repo(tmp_path / "work", images["fixed"])
    git("tag", "v1.0.0", cwd=work)
    url = work.as_uri()
    target = f"oci://{registry_plain.host}/pub/git"
    result = _scan(run_cli, url, gate_dbs["osv"], "--ref", "main", "--publish", target)
    assert result.returncode == 0, result.stderr
    result = _scan(run_cli, url, gate_dbs["osv"], "--ref", "v1.0.0", "--publish", target)
    assert result.returncode == 0, result.stderr
    with registry_plain.http() as client:
        assert flux.tags(client, "pub/git") == sorted(
            ["approved", f"main-{commit[:12]}", f"sha1-{commit[:12]}"]
        )
        branch = flux.fetch_artifact(client, "pub/git", f"main-{commit[:12]}")
    annotations = branch["manifest"]["annotations"]
    assert annotations["org.opencontainers.image.revision"] == f"main@sha1:{commit}"
    assert annotations["org.opencontainers.image.source"] == url


class _Proxy:
    """Forwards every request to the real registry, but answers 500 with ``fail_body`` to each
    ``PUT`` of the manifest tag ``fail_tag`` (a registry failing between the two tag pushes)."""

    def __init__(self, upstream: str, fail_tag: str, fail_body: bytes = b"") -> None:
        self.failed = 0
        self._fail_tag, self._fail_body = fail_tag, fail_body
        self._proxy = ForwardingProxy(upstream, self._intercept)
        self.host = self._proxy.host

    def _intercept(self, seen: Seen) -> Reply | None:
        if seen.method == "PUT" and seen.path.endswith(f"/manifests/{self._fail_tag}"):
            self.failed += 1
            return Reply(500, self._fail_body, {"Content-Type": "application/json"})
        return None

    def stop(self) -> None:
        self._proxy.stop()


@pytest.fixture
def failing_proxy(registry_plain: RegistryServer) -> Iterator[_Proxy]:
    # A hostile registry's error text: a terminal title escape and a forged log line, in the
    # distribution spec's error body ({"errors": [{"code", "message"}]}).
    hostile = {"errors": [{"code": "UNKNOWN", "message": "\x1b]0;pwned\x07\nPASS: forged"}]}
    proxy = _Proxy(registry_plain.url, "approved", json.dumps(hostile).encode())
    yield proxy
    proxy.stop()


def test_registry_failing_between_the_tags_leaves_approved_unchanged(
    run_cli: RunCli,
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
    failing_proxy: _Proxy,
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    first = _scan(
        run_cli, str(fleet), gate_dbs["osv"], "--publish", f"oci://{registry_plain.host}/pub/safe"
    )
    assert first.returncode == 0, first.stderr
    with registry_plain.http() as client:
        before = flux.fetch_artifact(client, "pub/safe", "approved")["digest"]
    # The next revision, pushed through the proxy: blobs and the per-revision tag get through,
    # the move of approved does not.
    (fleet / "apps" / "web.yaml").write_text(
        (fleet / "apps" / "web.yaml").read_text() + "# next revision\n"
    )
    second = _scan(
        run_cli, str(fleet), gate_dbs["osv"], "--publish", f"oci://{failing_proxy.host}/pub/safe"
    )
    assert second.returncode == 2
    assert "push failed" in second.stderr and "nothing published" in second.stderr
    assert failing_proxy.failed >= 1
    # The registry's text reaches the terminal escaped, on the one error line.
    assert "\x1b" not in second.stderr and "\\x1b]0;pwned\\x07" in second.stderr
    assert not any(line.startswith("PASS") for line in second.stderr.splitlines())
    with registry_plain.http() as client:
        assert flux.fetch_artifact(client, "pub/safe", "approved")["digest"] == before
        assert len([t for t in flux.tags(client, "pub/safe") if t != "approved"]) == 2


def test_publish_pin_pins_digests_that_kustomize_renders(
    run_cli: RunCli,
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
) -> None:
    from kubegate.scan import RevisionRequest, read_revision
    from kubegate.source import SourceSpec

    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    ks = fleet / "clusters" / "test" / "apps.yaml"
    original = "# the apps of the test cluster\n" + ks.read_text().replace(
        "  prune: true\n", "  prune: true  # keep this comment\n"
    )
    ks.write_text(original)
    target = f"oci://{registry_plain.host}/pub/pinned"
    result = _scan(run_cli, str(fleet), gate_dbs["osv"], "--publish", target, "--publish-pin")
    assert result.returncode == 0, result.stderr
    assert "pinned clusters/test/apps.yaml" in result.stderr
    assert ks.read_text() == original  # the judged tree is never edited
    with registry_plain.http() as client:
        artifact = flux.fetch_artifact(client, "pub/pinned", "approved")
        digest = client.head(
            "/v2/pub/web/manifests/fixed",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        ).headers["Docker-Content-Digest"]
    tree = _extract_layer(artifact["layers"][0], tmp_path / "pulled")
    name = images["fixed"].rsplit(":", 1)[0]
    assert (tree / "clusters" / "test" / "apps.yaml").read_text() == original + (
        f"  images:\n    - name: {name}\n      digest: {digest}\n"
    )
    revision = read_revision(RevisionRequest(SourceSpec(str(tree))))
    (use,) = revision.images.uses
    assert use.ref.digest == digest and use.ref.name == name
    assert not revision.problems


def test_bad_publish_options_are_usage_errors(run_cli: RunCli, tmp_path: Path) -> None:
    for args, message in [
        (["--publish", "https://example.invalid/x"], "expected oci://HOST/REPO[:TAG]"),
        (["--publish", "oci://nginx"], "expected oci://HOST/REPO[:TAG]"),
        (["--publish", "oci://127.0.0.1:5000/x@sha256:" + "0" * 64], "digest"),
        (["--publish", "oci://127.0.0.1:5000/x", "--publish-tag", "a/b"], "invalid tag"),
        (["--publish-pin"], "needs --publish"),
        (["--publish", "oci://127.0.0.1:5000/x", "--publish-tag", "approved"], "must differ"),
    ]:
        result = run_cli("scan", str(tmp_path), *args)
        assert result.returncode == 3, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("mode", ["token", "basic"])
def test_pushes_with_the_docker_config_credentials_and_refuses_without(
    mode: str,
    request: pytest.FixtureRequest,
    run_cli: RunCli,
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
) -> None:
    server: RegistryServer = request.getfixturevalue(f"registry_{mode}")
    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    target = f"oci://{server.host}/team/fleet-{mode}"
    args = ["--publish", target, "--ca-file", str(server.ca_file)] if server.ca_file else []
    args = args or ["--publish", target]
    anonymous = _scan(run_cli, str(fleet), gate_dbs["osv"], *args)
    assert anonymous.returncode == 2
    assert "push failed" in anonymous.stderr and "nothing published" in anonymous.stderr
    server.docker_config(tmp_path / "docker")
    result = run_cli(
        "scan", str(fleet), "--db", str(gate_dbs["osv"]), "-q", *args,
        env={"DOCKER_CONFIG": str(tmp_path / "docker")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert server.password not in result.stderr + result.stdout
    with server.http(f"team/fleet-{mode}") as client:
        artifact = flux.fetch_artifact(client, f"team/fleet-{mode}", "approved")
    assert artifact["manifest"]["layers"][0]["mediaType"] == flux.CONTENT_MEDIA_TYPE


def test_a_flux_artifact_source_republishes_the_same_bytes(
    run_cli: RunCli,
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
    http_serve: Any,
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    first = _scan(
        run_cli, str(fleet), gate_dbs["osv"], "--publish", f"oci://{registry_plain.host}/pub/a"
    )
    assert first.returncode == 0, first.stderr
    with registry_plain.http() as client:
        tarball = flux.fetch_artifact(client, "pub/a", "approved")["layers"][0]
    digest = "sha256:" + hashlib.sha256(tarball).hexdigest()
    # The published layer served as a source-controller artifact, judged and published again:
    # the third kind of source, and the same tree gives the same bytes.
    url = http_serve.add("gitrepository/flux-system/fleet/latest.tar.gz", tarball)
    second = _scan(
        run_cli, "", gate_dbs["osv"], "--artifact-url", url, "--artifact-digest", digest,
        "--publish", f"oci://{registry_plain.host}/pub/b",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    with registry_plain.http() as client:
        again = flux.fetch_artifact(client, "pub/b", "approved")
        assert flux.tags(client, "pub/b") == ["approved", f"sha256-{digest[7:19]}"]
    assert again["layers"][0] == tarball
    assert again["manifest"]["annotations"]["org.opencontainers.image.revision"] == digest


def test_publish_pin_refuses_what_it_cannot_pin_and_publishes_nothing(
    run_cli: RunCli,
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    shutil.rmtree(fleet / "clusters")  # plain YAML: no Flux Kustomization renders the image
    target = f"oci://{registry_plain.host}/pub/unpinnable"
    result = _scan(run_cli, str(fleet), gate_dbs["osv"], "--publish", target, "--publish-pin")
    assert result.returncode == 2
    assert "rendered by no Flux Kustomization" in result.stderr
    assert "nothing published" in result.stderr
    with registry_plain.http() as client:
        assert flux.tags(client, "pub/unpinnable") == []
