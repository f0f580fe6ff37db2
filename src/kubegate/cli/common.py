"""Options shared by several commands (output, verbosity, where a revision comes from)."""

from __future__ import annotations

import argparse
import posixpath
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kubegate.errors import ConfigError, UsageError
from kubegate.reference import DOCKER_HUB
from kubegate.textfile import read_text

# The pipeline's modules are imported where they are used: every command imports this module,
# and ``kubegate --version`` or a usage error must not pay for httpx, kustomize glue or SQLite
# (start-up time counts, STYLE.md).
if TYPE_CHECKING:
    from kubegate.registry import Credentials, RegistryOptions
    from kubegate.scan import RevisionRequest
    from kubegate.source import SourceSpec


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``-v``/``-q``: logs and progress go to stderr, machine output to stdout."""
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="debug logs (and tracebacks) on stderr"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the files of a revision come from (README "Sources")."""
    parser.add_argument(
        "source",
        nargs="?",
        default=".",
        metavar="SOURCE",
        help="local directory (default .) or git repository (path, file://, https://, ssh://)",
    )
    parser.add_argument(
        "--path", default="", help="path inside the source to render (default: root)"
    )
    parser.add_argument("--ref", help="git branch, tag or commit to check out (git sources)")
    parser.add_argument("--artifact-url", help="Flux source-controller artifact (tar.gz) URL")
    parser.add_argument("--artifact-digest", help="sha256:HEX digest of the artifact tarball")


def source_spec(args: argparse.Namespace) -> SourceSpec:
    """Build the :class:`SourceSpec` from parsed source options."""
    from kubegate.source import SourceSpec

    return SourceSpec(
        location=args.source,
        ref=args.ref,
        artifact_url=args.artifact_url,
        artifact_digest=args.artifact_digest,
    )


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    """How images are pulled (docs/registry.md)."""
    parser.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="OS/ARCH[/VARIANT]",
        help="platform of a multi-platform image to inspect (repeatable; default every linux one)",
    )
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="allow plain HTTP for this registry (loopback registries fall back by themselves)",
    )
    parser.add_argument("--ca-file", type=Path, help="PEM bundle of CAs to trust for registries")
    parser.add_argument(
        "--registry-mirror",
        action="append",
        default=[],
        metavar="REGISTRY=HOST[:PORT]",
        help="pull REGISTRY's images through a mirror (reports keep the canonical reference)",
    )
    parser.add_argument("--username", help="user name for one registry (with --password-stdin)")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the --username password from stdin"
    )
    parser.add_argument(
        "--login-registry",
        metavar="HOST[:PORT]",
        help="the registry --username is for (default: the registry of REF)",
    )


def registry_options(args: argparse.Namespace, default_login: str | None = None) -> RegistryOptions:
    """Build :class:`RegistryOptions` from parsed registry options.

    ``default_login`` is the registry ``--username`` applies to when ``--login-registry`` is not
    given (the registry of the one image ``image``/``sbom`` look at).
    """
    from kubegate.registry import RegistryOptions, parse_platform

    if args.ca_file is not None and not args.ca_file.is_file():
        raise UsageError("no such file", where=f"--ca-file {args.ca_file}")
    return RegistryOptions(
        ca_file=args.ca_file,
        insecure_registries=frozenset(args.insecure_registry),
        platforms=tuple(parse_platform(text) for text in args.platform),
        mirrors=_mirrors(args.registry_mirror),
        credentials=_login(args, default_login),
    )


def login_registry_of(reference: str) -> str | None:
    """The registry ``--username`` applies to for a one-image command: REF's (None if local)."""
    from kubegate.reference import parse_reference
    from kubegate.registry import is_local_reference

    if is_local_reference(reference):
        return None
    return parse_reference(reference).registry


def _mirrors(values: list[str]) -> dict[str, str]:
    mirrors: dict[str, str] = {}
    for text in values:
        registry, sep, host = text.partition("=")
        if not sep or not registry.strip() or not host.strip() or "/" in host:
            raise UsageError(
                f"expected REGISTRY=HOST[:PORT], got {text!r}", where="--registry-mirror"
            )
        canonical = DOCKER_HUB if registry.strip() in ("index.docker.io", "docker.io") else registry
        mirrors[canonical.strip()] = host.strip()
    return mirrors


#: A password is short; refuse to read an unbounded stream.
_MAX_PASSWORD_BYTES = 64 * 1024


def _login(args: argparse.Namespace, default_login: str | None) -> dict[str, Credentials]:
    if args.username is None and not args.password_stdin:
        return {}
    if args.username is None or not args.password_stdin:
        raise UsageError("--username and --password-stdin go together", where="--username")
    registry = args.login_registry or default_login
    if registry is None:
        raise UsageError("name the registry with --login-registry HOST", where="--username")
    password = sys.stdin.read(_MAX_PASSWORD_BYTES + 1)
    if len(password) > _MAX_PASSWORD_BYTES:
        raise UsageError("password on stdin is too long", where="--password-stdin")
    password = password.rstrip("\r\n")
    if not password:
        raise UsageError("no password on stdin", where="--password-stdin")
    from kubegate.registry import Credentials

    return {registry: Credentials(args.username, password)}


#: A variables file is small; refuse anything that is clearly not one.
MAX_VAR_FILE_BYTES = 1024 * 1024


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    """How a revision is rendered: Kustomization selection, postBuild variables, CRD paths."""
    parser.add_argument(
        "--kustomization",
        metavar="NS/NAME",
        help="only what this Flux Kustomization (and those it applies) renders",
    )
    parser.add_argument(
        "--cluster",
        action="append",
        default=[],
        metavar="NAME|PATH",
        help="only this cluster of a fleet (clusters/NAME, or its path; repeatable)",
    )
    parser.add_argument(
        "--source",
        dest="sources",
        action="append",
        default=[],
        metavar="NS/NAME=DIR|GIT-URL[@REF]",
        help="files of another GitRepository the revision names (repeatable; never fetched "
        "from the URL in the revision)",
    )
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="K=V",
        help="postBuild variable of a ConfigMap/Secret that lives only in the cluster",
    )
    parser.add_argument(
        "--var-file",
        action="append",
        default=[],
        metavar="FILE",
        help="file of KEY=VALUE lines, read like --var",
    )
    parser.add_argument(
        "--image-path",
        action="append",
        default=[],
        metavar="KIND=PATH",
        help="extra place holding a pod spec or image for a CRD kind (dotted path)",
    )


def _check_path(path: str) -> str:
    # Checked before any fetch; Checkout.resolve_path checks it again inside the source.
    if not path:
        return ""
    if path.startswith("/") or "\\" in path:
        raise UsageError(f"--path {path!r}: must be relative to the source root")
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../"):
        raise UsageError(f"--path {path!r}: must stay inside the source")
    return "" if norm == "." else norm


def _check_selection(text: str | None) -> str | None:
    if text is None:
        return None
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise UsageError(f"--kustomization {text!r}: expected NAMESPACE/NAME")
    return text


def parse_source(text: str, where: str = "--source") -> tuple[str, SourceSpec]:
    """``NS/NAME=DIR|GIT-URL[@REF]`` -> (``NS/NAME``, where its files come from)."""
    from kubegate.source import SourceSpec

    key, sep, location = text.partition("=")
    namespace, slash, name = key.strip().partition("/")
    if not sep or not slash or not namespace or not name or "/" in name or not location.strip():
        raise UsageError(f"expected NS/NAME=DIR|GIT-URL[@REF], got {text!r}", where=where)
    location = location.strip()
    if Path(location).is_dir():
        return f"{namespace}/{name}", SourceSpec(location=location)
    # `@REF` ends a URL only after its host part: `git@host:org/repo` and `https://user@host/x`
    # carry an `@` of their own.
    head, at, ref = location.rpartition("@")
    if at and ref and "/" in head.partition("://")[2 if "://" in head else 0]:
        return f"{namespace}/{name}", SourceSpec(location=head, ref=ref)
    return f"{namespace}/{name}", SourceSpec(location=location)


def parse_var(text: str, where: str) -> tuple[str, str]:
    """``K=V`` -> (K, V)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"{where}: expected KEY=VALUE, got {text!r}")
    return key, value


def read_var_file(path: str) -> dict[str, str]:
    """Variables from a file of ``KEY=VALUE`` lines (``#`` comments, optional quotes)."""
    file = Path(path)
    text = read_text(file, MAX_VAR_FILE_BYTES, "variables file")
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected KEY=VALUE, got {raw!r}", where=f"{path}:{number}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def collect_vars(args: argparse.Namespace) -> dict[str, str]:
    """--var-file files in order, then --var on top."""
    values: dict[str, str] = {}
    for path in args.var_file:
        values.update(read_var_file(path))
    for text in args.var:
        key, value = parse_var(text, "--var")
        values[key] = value
    return values


def revision_request(args: argparse.Namespace) -> RevisionRequest:
    """Everything ``read_revision`` needs, from the source and render options."""
    from kubegate.images import parse_image_path
    from kubegate.scan import RevisionRequest

    return RevisionRequest(
        source=source_spec(args),
        path=_check_path(args.path),
        kustomization=_check_selection(args.kustomization),
        variables=collect_vars(args),
        image_paths=tuple(parse_image_path(text) for text in args.image_path),
        clusters=tuple(args.cluster),
        sources=dict(parse_source(text) for text in args.sources),
    )
