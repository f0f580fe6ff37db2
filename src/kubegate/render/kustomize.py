"""The kustomize runner: the real kustomize binary, load restrictions off as Flux sets them.

Prefers a standalone ``kustomize`` on PATH (a single Go binary, faster to start), else
``kubectl kustomize``; neither present is a clear RenderError. Plugins stay disabled (the default
of both) and remote bases are allowed, as in kustomize-controller. The fleet walker runs up to
:data:`BUILD_WORKERS` builds at once (each is a subprocess, so its threads only wait).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
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


@dataclass(frozen=True, slots=True)
class Kustomize:
    """A resolved kustomize command line prefix (``kustomize build`` or ``kubectl kustomize``)."""

    argv: tuple[str, ...]

    def build(self, directory: Path, where: str, *, trees: Sequence[Path] = ()) -> str:
        """``kustomize build DIRECTORY``; its error text is passed through in a RenderError.

        Paths under ``trees`` (the private build tree, the source root) are shown relative in
        error text, as users know them.
        """
        cmd = [*self.argv, "--load-restrictor", "LoadRestrictionsNone", str(directory)]
        _logger.debug("running %s", cmd)
        try:
            proc = subprocess.run(  # noqa: S603 - fixed binary, no shell
                cmd,
                capture_output=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
                env=_build_env(),
            )
        except subprocess.TimeoutExpired as exc:
            raise RenderError(
                f"kustomize build timed out after {BUILD_TIMEOUT_S} s", where=where
            ) from exc
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


def _offline_kubeconfig() -> Path:
    path = cache_dir() / "kubectl-offline.kubeconfig"
    if not path.is_file() or path.read_text(encoding="utf-8") != _OFFLINE_KUBECONFIG:
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(_OFFLINE_KUBECONFIG, encoding="utf-8")
        os.replace(partial, path)
    return path


def _build_env() -> dict[str, str]:
    # Keep the child from picking up a user's plugin settings or cluster.
    env = dict(os.environ)
    env.pop("KUSTOMIZE_PLUGIN_HOME", None)
    env["KUBECONFIG"] = str(_offline_kubeconfig())
    return env


# kubectl wraps its error in a klog line:
#   E1126 16:25:57.297 17524 run.go:72] "command failed" err="..."
# and, when the error text holds newlines, in klog's multi-line form (k8s.io/klog textlogger):
#   E1126 16:25:57.297 17524 run.go:72] "command failed" err=<
#   <TAB>first line
#   <TAB>second line
#    >
_KLOG_PREFIX = re.compile(r"^[EWIF]\d{4} [\d:.]+\s+\d+ \S+\] ")
_KLOG_FAILED = '"command failed" err='

_GO_ESCAPES = {"\\n": " ", "\\t": " ", '\\"': '"', "\\\\": "\\"}


def _unquote(text: str) -> str:
    # A Go %q string: keep it on one line.
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return re.sub(r'\\[nt"\\]', lambda m: _GO_ESCAPES[m.group(0)], text)


def _one_line(stderr: bytes) -> str:
    """kustomize's error text as one line, without klog's prefix (messages must be one line)."""
    text = stderr.decode("utf-8", errors="replace")
    parts: list[str] = []
    block: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if block is not None:
            if line == ">":
                parts.append(" ".join(block))
                block = None
            elif line:
                block.append(line)
            continue
        match = _KLOG_PREFIX.match(line)
        rest = line[match.end() :] if match else line
        if rest.startswith(_KLOG_FAILED):
            rest = rest.removeprefix(_KLOG_FAILED)
            if rest == "<":
                block = []
            else:
                parts.append(_unquote(rest))
        elif rest:
            parts.append(rest)
    if block:
        parts.append(" ".join(block))
    joined = "; ".join(p.removeprefix("Error: ").removeprefix("error: ") for p in parts if p)
    return re.sub(r"\s+", " ", joined).strip() or "no error text"


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
