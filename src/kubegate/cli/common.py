"""Options shared by several commands (output, verbosity, where a revision comes from)."""

from __future__ import annotations

import argparse
import os
import posixpath
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kubegate.display import visible
from kubegate.errors import EXIT_UNPROVEN, ConfigError, UsageError, redact_urls
from kubegate.images.reference import DOCKER_HUB
from kubegate.textfile import read_text
from kubegate.transfer import DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_RATE, TransferLimits

# The pipeline's modules are imported where they are used: every command imports this module,
# and ``kubegate --version`` or a usage error must not pay for httpx, kustomize glue or SQLite
# (start-up time counts, STYLE.md).
if TYPE_CHECKING:
    from kubegate.registry import Credentials, RegistryOptions
    from kubegate.scan import RevisionRequest
    from kubegate.source import SourceSpec


def print_line(text: str) -> None:
    """One ``kubegate: TEXT`` line on stderr (``TEXT`` usually starts ``error:`` or ``warning:``).

    The text may carry what a hostile party wrote (an image reference, a registry's error body, a
    manifest's field): URL credentials and queries are redacted and control characters shown
    escaped, so nothing reaches the terminal raw. Every stderr line of ``kubegate.cli`` goes here.
    """
    print(f"kubegate: {visible(redact_urls(text))}", file=sys.stderr)


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


#: Default overall deadline of ``scan``, ``image`` and ``sbom`` (docs/security.md).
DEFAULT_TIMEOUT = 900.0
#: After the deadline, a command still running (CPU work, a stage that does not check the
#: deadline) is ended this much later by :func:`transfer_limits`'s watchdog.
WATCHDOG_GRACE = 30.0


def add_limit_arguments(
    parser: argparse.ArgumentParser, *, default_timeout: float | None, timeout_help: str
) -> None:
    """``--timeout``, ``--idle-timeout``, ``--min-rate``: how long a command may take."""
    shown = "none" if default_timeout is None else f"{default_timeout:g}"
    parser.add_argument(
        "--timeout",
        type=float,
        default=default_timeout,
        metavar="SECONDS",
        help=f"{timeout_help} (default {shown}; 0: no overall deadline)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="give up on a connection that sends nothing for this long (default "
        f"{DEFAULT_IDLE_TIMEOUT:g}); also the window of --min-rate",
    )
    parser.add_argument(
        "--min-rate",
        type=int,
        default=DEFAULT_MIN_RATE,
        metavar="BYTES",
        help="give up on a response slower than BYTES/s over an --idle-timeout window "
        f"(default {DEFAULT_MIN_RATE}; 0: no floor)",
    )


def transfer_limits(
    args: argparse.Namespace, started: float, *, arm_watchdog: bool = True
) -> TransferLimits:
    """The limits of this command's transfers; arms the deadline's watchdog.

    The deadline is checked by every transfer (:mod:`kubegate.transfer`) and by the scan's image
    stage; the watchdog is the backstop for work that does not look at it: ``WATCHDOG_GRACE``
    seconds after the deadline it prints one error line and ends the process with exit 2.
    A daemon (``watch``) passes ``arm_watchdog=False``: ``--timeout`` bounds each of its scans,
    not the process, so it gets no process-wide deadline and no watchdog.
    """
    timeout = getattr(args, "timeout", None)
    if timeout is not None and timeout < 0:
        raise UsageError("must not be negative", where="--timeout")
    if args.idle_timeout <= 0:
        raise UsageError("must be positive", where="--idle-timeout")
    if args.min_rate < 0:
        raise UsageError("must not be negative", where="--min-rate")
    deadline = None
    if timeout and arm_watchdog:
        deadline = started + timeout
        _arm_watchdog(timeout, deadline + WATCHDOG_GRACE - time.monotonic())
    return TransferLimits(min_rate=args.min_rate, rate_window=args.idle_timeout, deadline=deadline)


def _arm_watchdog(timeout: float, delay: float) -> None:
    def expire() -> None:
        print(
            f"kubegate: error: --timeout: not done {timeout:g}s after the start "
            f"(+{WATCHDOG_GRACE:g}s grace); stopped, nothing proven",
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.flush()
        os._exit(EXIT_UNPROVEN)

    timer = threading.Timer(max(0.0, delay), expire)
    timer.daemon = True
    timer.start()


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


def registry_options(
    args: argparse.Namespace,
    default_login: str | None = None,
    limits: TransferLimits | None = None,
) -> RegistryOptions:
    """Build :class:`RegistryOptions` from parsed registry options.

    ``default_login`` is the registry ``--username`` applies to when ``--login-registry`` is not
    given (the registry of the one image ``image``/``sbom`` look at); ``limits`` those of
    :func:`transfer_limits` (with ``--idle-timeout`` as the client's timeout).
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
        timeout=getattr(args, "idle_timeout", DEFAULT_IDLE_TIMEOUT),
        limits=limits or TransferLimits(),
    )


def login_registry_of(reference: str) -> str | None:
    """The registry ``--username`` applies to for a one-image command: REF's (None if local)."""
    from kubegate.images.reference import parse_reference
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
        "--allow-remote-bases",
        action="store_true",
        help="fetch remote kustomize resources (http(s) URLs of YAML files) and report their "
        "sha256, instead of refusing them as not proven (config render.allowRemoteBases)",
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
    from kubegate.images.find import parse_image_path
    from kubegate.scan import RevisionRequest

    return RevisionRequest(
        source=source_spec(args),
        path=_check_path(args.path),
        kustomization=_check_selection(args.kustomization),
        variables=collect_vars(args),
        image_paths=tuple(parse_image_path(text) for text in args.image_path),
        clusters=tuple(args.cluster),
        sources=dict(parse_source(text) for text in args.sources),
        allow_remote_bases=args.allow_remote_bases,
    )
