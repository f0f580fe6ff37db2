"""The helm runner: ``helm template`` of the real helm binary, isolated and bounded.

helm is found once per render (``HelmOptions.path``, else ``helm`` on PATH) and its version
checked once with ``helm version --short``: 3.14 or later, or 4.x (older releases lack flags
kubegate relies on). Every run gets an argument list (never a shell), a timeout from the
render's deadline, output read up to :data:`MAX_OUTPUT_BYTES` (the process is killed beyond),
and an environment with nothing of the caller's but ``PATH`` and locale: ``HELM_*`` homes in a
private directory (no repositories, no registry logins, no plugins) and ``KUBECONFIG`` naming a
file that does not exist, so no cluster and no credentials are ever reached. Called by
``kubegate.render.helm.stage``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kubegate.errors import RenderError

_logger = logging.getLogger(__name__)

#: A hostile chart (a template looping over a huge range) must not hang a CI job forever.
TEMPLATE_TIMEOUT_S = 300
#: Cap on ``helm template`` output (bytes): no unbounded reads.
MAX_OUTPUT_BYTES = 256 * 1024 * 1024
#: Cap on captured error text (bytes); only its first line is passed on.
MAX_ERROR_BYTES = 64 * 1024
MAX_ERROR_CHARS = 500
#: ``--skip-schema-validation`` appeared in helm 3.16; older releases validate (and may fail
#: on a schema whose ``$ref`` needs the network, which the message then says).
_SKIP_SCHEMA_FROM = (3, 16)
MINIMUM = (3, 14)
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR")
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True, slots=True)
class Helm:
    """A checked helm binary and its version."""

    path: str
    version: tuple[int, int, int]

    def template(
        self,
        args: Sequence[str],
        *,
        home: Path,
        where: str | None,
        deadline: float | None = None,
    ) -> str:
        """``helm template ARGS``; its first error line is passed on in a RenderError."""
        timeout = float(TEMPLATE_TIMEOUT_S)
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                raise RenderError("not rendered before --timeout", where=where)
        flags = ["--skip-schema-validation"] if self.version[:2] >= _SKIP_SCHEMA_FROM else []
        cmd = [self.path, "template", *args, *flags]
        _logger.debug("running %s", cmd)
        rc, out, err = run_bounded(cmd, _env(home), timeout, where)
        if rc != 0:
            text = first_error(err)
            raise RenderError(f"helm template failed: {text}", where=where)
        return out.decode("utf-8", errors="replace")


def _env(home: Path) -> dict[str, str]:
    env = {name: os.environ[name] for name in _KEPT_ENV if name in os.environ}
    for name in ("cache", "config", "data"):
        directory = home / name
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        env[f"HELM_{name.upper()}_HOME"] = str(directory)
    env["HELM_PLUGINS"] = str(home / "data" / "plugins")
    env["HOME"] = str(home)
    # A kubeconfig that does not exist: helm template never needs a cluster, and must not
    # reach the user's real one with their credentials.
    env["KUBECONFIG"] = str(home / "no-kubeconfig")
    return env


def _drain(
    stream: IO[bytes],
    limit: int,
    into: list[bytes],
    over: threading.Event,
    proc: subprocess.Popen[bytes] | None,
) -> None:
    size = 0
    while chunk := stream.read(65536):
        if size + len(chunk) > limit:
            if not over.is_set():
                over.set()
                if proc is not None:
                    proc.kill()
            # Keep reading (and dropping) so the child never blocks on a full pipe.
            continue
        size += len(chunk)
        into.append(chunk)


def run_bounded(
    cmd: Sequence[str], env: dict[str, str], timeout: float, where: str | None
) -> tuple[int, bytes, bytes]:
    """Run ``cmd``; stdout up to :data:`MAX_OUTPUT_BYTES`, killed after ``timeout`` seconds."""
    try:
        proc = subprocess.Popen(  # noqa: S603 - fixed binary, argument list, no shell
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        raise RenderError(f"cannot run {cmd[0]}: {exc.strerror}", where=where) from exc
    out: list[bytes] = []
    err: list[bytes] = []
    too_much = threading.Event()
    ignored = threading.Event()
    assert proc.stdout is not None and proc.stderr is not None  # noqa: S101 - PIPE above
    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, MAX_OUTPUT_BYTES, out, too_much, proc)),
        threading.Thread(target=_drain, args=(proc.stderr, MAX_ERROR_BYTES, err, ignored, None)),
    ]
    for reader in readers:
        reader.start()
    try:
        # The stdout reader kills the process when its output passes the cap.
        proc.wait(timeout=max(timeout, 0.0))
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        raise RenderError(
            "not rendered before --timeout"
            if timeout < TEMPLATE_TIMEOUT_S
            else f"helm template timed out after {TEMPLATE_TIMEOUT_S} s",
            where=where,
        ) from exc
    finally:
        proc.wait()
        for reader in readers:
            reader.join()
        proc.stdout.close()
        proc.stderr.close()
    if too_much.is_set():
        raise RenderError(f"helm output larger than {MAX_OUTPUT_BYTES} bytes", where=where)
    return proc.returncode, b"".join(out), b"".join(err)


def first_error(stderr: bytes) -> str:
    """helm's error as one line (``Error: ...``), control characters escaped, cut short."""
    lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines()]
    error = next((line[len("Error: ") :] for line in lines if line.startswith("Error: ")), "")
    if not error:
        error = next((line for line in lines if line), "no error text")
    error = "".join(c if c.isprintable() else repr(c)[1:-1] for c in error)
    return error if len(error) <= MAX_ERROR_CHARS else error[:MAX_ERROR_CHARS] + "..."


_FOUND: dict[str, Helm | RenderError] = {}
_FOUND_LOCK = threading.Lock()


def find_helm(path: str | None) -> Helm:
    """The helm binary at ``path`` (else ``helm`` on PATH), version checked once per process."""
    name = path or "helm"
    resolved = shutil.which(name)
    if resolved is None:
        raise RenderError(
            f"helm is not found ({'helm.path ' + path if path else 'not on PATH'}); "
            "install helm >= 3.14 to render HelmReleases"
        )
    with _FOUND_LOCK:
        found = _FOUND.get(resolved)
        if found is None:
            found = _check(resolved)
            _FOUND[resolved] = found
    if isinstance(found, RenderError):
        raise found
    return found


def _check(path: str) -> Helm | RenderError:
    try:
        with tempfile.TemporaryDirectory(prefix="kubegate-helm-") as home:
            rc, out, err = run_bounded([path, "version", "--short"], _env(Path(home)), 30.0, None)
    except RenderError as exc:
        return RenderError(f"cannot check the helm version of {path}: {exc.message}")
    match = _VERSION.search(out.decode("utf-8", errors="replace"))
    if rc != 0 or match is None:
        return RenderError(f"{path} version: {first_error(err or out)}")
    version = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    if version[:2] < MINIMUM:
        return RenderError(
            f"{path} is helm {'.'.join(map(str, version))}; HelmReleases need helm >= 3.14"
        )
    _logger.debug("helm %s at %s", version, path)
    return Helm(path, version)
