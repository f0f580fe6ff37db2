"""The kustomize runner: the real kustomize binary, load restrictions off as Flux sets them.

Prefers a standalone ``kustomize`` on PATH (a single Go binary, faster to start), else
``kubectl kustomize``; neither present is a clear RenderError. Plugins stay disabled (the default
of both). kustomize itself is never trusted with the source root's boundary: every path a build
names was checked first (:mod:`kubegate.render.confine`), remote references were refused or
fetched by kubegate (:mod:`kubegate.render.remote`), and the process gets an environment with
nothing of the caller's but ``PATH`` and locale (an env file line without ``=`` takes its value
from kustomize's environment: CI tokens must not be there). A failed build is reported by its
first error line only, cut short. The fleet walker runs up to :data:`BUILD_WORKERS` builds at
once (each is a subprocess, so its threads only wait).
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

from kubegate.cachedir import cache_dir
from kubegate.errors import RenderError

_logger = logging.getLogger(__name__)

#: A build of a hostile or huge kustomization must not hang a CI job forever.
BUILD_TIMEOUT_S = 300
#: Concurrent builds. A build is mostly process start-up and Go runtime, not one busy core:
#: measured here, 40 builds took 4.7 s one at a time, 3.2 s with 2 at once, 2.2 s with 4.
BUILD_WORKERS = max(2, 2 * (os.cpu_count() or 1))
#: Cap on captured output (bytes) of one build: no unbounded reads.
MAX_OUTPUT_BYTES = 256 * 1024 * 1024
#: Longest kustomize error text passed on (it quotes the revision's own files at most).
MAX_ERROR_CHARS = 500
#: What a build may see of kubegate's environment: nothing that could hold a secret.
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR")


@dataclass(frozen=True, slots=True)
class Kustomize:
    """A resolved kustomize command line prefix (``kustomize build`` or ``kubectl kustomize``)."""

    argv: tuple[str, ...]

    def build(
        self,
        directory: Path,
        where: str,
        *,
        trees: Sequence[Path] = (),
        deadline: float | None = None,
    ) -> str:
        """``kustomize build DIRECTORY``; its first error line is passed on in a RenderError.

        Paths under ``trees`` (the private build tree, the source root) are shown relative in
        error text, as users know them. ``deadline`` (``time.monotonic()``, the command's
        ``--timeout``) bounds the build along with :data:`BUILD_TIMEOUT_S`.
        """
        timeout = float(BUILD_TIMEOUT_S)
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                raise RenderError("not rendered before --timeout", where=where)
        # LoadRestrictionsNone as kustomize-controller sets it; confine.py has already proven
        # that nothing outside the source root is named.
        cmd = [*self.argv, "--load-restrictor", "LoadRestrictionsNone", str(directory)]
        _logger.debug("running %s", cmd)
        try:
            env = _build_env()
        except OSError as exc:
            raise RenderError(
                f"cannot prepare kustomize's private kubeconfig: {exc.strerror}", where=where
            ) from exc
        try:
            proc = subprocess.run(  # noqa: S603 - fixed binary, no shell
                cmd,
                capture_output=True,
                timeout=timeout,
                check=False,
                env=env,
            )
        except subprocess.TimeoutExpired as exc:
            reason = (
                "not rendered before --timeout"
                if deadline is not None and timeout < BUILD_TIMEOUT_S
                else f"kustomize build timed out after {BUILD_TIMEOUT_S} s"
            )
            raise RenderError(reason, where=where) from exc
        except OSError as exc:
            raise RenderError(f"cannot run {cmd[0]}: {exc.strerror}", where=where) from exc
        if proc.returncode != 0:
            text = _one_line(proc.stderr)
            for tree in trees:
                text = text.replace(f"{tree}/", "").replace(str(tree), ".")
            raise RenderError(f"kustomize build failed: {text}", where=where)
        if len(proc.stdout) > MAX_OUTPUT_BYTES:
            raise RenderError("kustomize output larger than the limit", where=where)
        return proc.stdout.decode("utf-8", errors="replace")

    def version(self) -> str | None:
        """What ``kustomize version`` (``kubectl version --client``) prints; None if it fails.

        Run once per process and binary (the render cache keys every build on it, so a new
        kustomize never serves an old one's output).
        """
        with _VERSION_LOCK:
            if self.argv not in _VERSIONS:
                _VERSIONS[self.argv] = _run_version(self.argv)
            return _VERSIONS[self.argv]


_VERSION_LOCK = threading.Lock()
_VERSIONS: dict[tuple[str, ...], str | None] = {}


def _run_version(argv: tuple[str, ...]) -> str | None:
    binary = argv[0]
    cmd = [binary, "version"] if argv[1:] == ("build",) else [binary, "version", "--client"]
    try:
        proc = subprocess.run(  # noqa: S603 - fixed binary, no shell
            cmd, capture_output=True, timeout=60, check=False, env=_build_env()
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _logger.debug("%s: %s", cmd, exc)
        return None
    text = proc.stdout.decode("utf-8", errors="replace").strip()
    if proc.returncode != 0 or not text:
        _logger.debug("%s exited %s", cmd, proc.returncode)
        return None
    return f"{Path(binary).name}: {text}"


#: A kubeconfig naming no credentials and a closed loopback port. ``kubectl kustomize`` opens
#: a connection to the API server of the current kubeconfig (seen with strace: the default
#: 127.0.0.1:8080 without one); rendering must never reach a user's real cluster with their
#: credentials, nor wait on one that is unreachable.
_OFFLINE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: kubegate-offline
  cluster: {server: "http://127.0.0.1:9"}
contexts:
- name: kubegate-offline
  context: {cluster: kubegate-offline}
current-context: kubegate-offline
"""


_KUBECONFIG_LOCK = threading.Lock()


def _offline_kubeconfig() -> Path:
    # Builds run in parallel threads (and other kubegate processes may share the cache dir):
    # each writer gets its own temporary name, so one never moves another's file away (that
    # surfaced as "cannot run kubectl: No such file or directory" on a fresh cache).
    path = cache_dir() / "kubectl-offline.kubeconfig"
    with _KUBECONFIG_LOCK:
        if not path.is_file() or path.read_text(encoding="utf-8") != _OFFLINE_KUBECONFIG:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(_OFFLINE_KUBECONFIG)
            os.replace(partial, path)
    return path


def _build_env() -> dict[str, str]:
    # Nothing of the caller's environment but the basics: no plugin settings, no cluster, and
    # no token an env file line (``KEY`` without ``=``) or /proc/self/environ could hand out.
    env = {name: os.environ[name] for name in _KEPT_ENV if name in os.environ}
    env["HOME"] = str(cache_dir())
    env["KUBECONFIG"] = str(_offline_kubeconfig())
    return env


# kubectl wraps its error in a klog line, on one line or as a block closed by a lone ">":
#   E1126 16:25:57.297 17524 run.go:72] "command failed" err="..."
#   E1203 18:03:17.630 23093 run.go:72] "command failed" err=<
#   \t...
#    >
_KLOG = re.compile(r'^[EWIF]\d{4} [\d:.]+\s+\d+ \S+\] "command failed" err="(.*)"$')
_KLOG_BLOCK = re.compile(r'^[EWIF]\d{4} [\d:.]+\s+\d+ \S+\] "command failed" err=<$')
# kustomize quotes a builtin plugin's whole configuration in this error: content, left out.
_QUOTED_CONFIG = re.compile(r"with config: `.*?`: ", re.DOTALL)


def _one_line(stderr: bytes) -> str:
    """The error of a failed build as one line, control characters escaped, cut short.

    Only kustomize's error itself is passed on (the first ``Error:`` line, or kubectl's
    ``err=`` text), without the plugin configuration it may quote, so no file content travels
    further than the error line.
    """
    lines = stderr.decode("utf-8", errors="replace").strip().splitlines()
    error = ""
    for index, line in enumerate(lines):
        if match := _KLOG.match(line.strip()):
            error = match.group(1)
            break
        if _KLOG_BLOCK.match(line.strip()):
            block = []
            for rest in lines[index + 1 :]:
                if rest.strip() == ">":
                    break
                block.append(rest.strip())
            error = "\n".join(block)
            break
        if line.lower().startswith("error: "):
            error = line[len("error: ") :]
            break
    if not error:
        error = next((line.strip() for line in lines if line.strip()), "no error text")
    error = _QUOTED_CONFIG.sub("with config: ", error)
    error = " ".join(part.strip() for part in error.splitlines() if part.strip())
    error = "".join(c if c.isprintable() else repr(c)[1:-1] for c in error)
    return error if len(error) <= MAX_ERROR_CHARS else error[:MAX_ERROR_CHARS] + "..."


def find_kustomize() -> Kustomize:
    """``kustomize build`` if on PATH, else ``kubectl kustomize``; RenderError if neither."""
    standalone = shutil.which("kustomize")
    if standalone:
        return Kustomize((standalone, "build"))
    kubectl = shutil.which("kubectl")
    if kubectl:
        return Kustomize((kubectl, "kustomize"))
    raise RenderError(
        "neither kustomize nor kubectl is on PATH (one is needed to build kustomizations)"
    )
