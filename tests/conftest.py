"""Session-wide test helpers shared by unit and integration tests.

``run_cli`` runs the real ``kubegate`` entry point in a subprocess (``python -m kubegate`` with
this checkout's ``src`` first on ``PYTHONPATH``), so exit codes, stdout/stderr separation and the
absence of tracebacks are tested as a user sees them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests judge correctness, not speed: no per-example deadline (a loaded 2-core CI
# machine would make it flaky). CI replays a fixed sequence of examples so that a red run is
# reproducible; developers' runs explore new examples each time.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

#: Fixture modules under tests/fixtures/, one line each.
pytest_plugins: list[str] = [
    "tests.fixtures.gitserve",
    "tests.fixtures.golden",
    "tests.fixtures.httpserve",
    "tests.fixtures.layers",
    "tests.fixtures.osvdb",
    "tests.fixtures.registry",
    "tests.fixtures.rpms",
    "tests.fixtures.gobuild",
    # Imports tests.fixtures.layers: listed after it so pytest rewrites that module first.
    "tests.fixtures.gatefleet",
    "tests.fixtures.fluxartifact",
]

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-goldens`` rewrites tests/golden/ from the current output instead of comparing."""
    parser.addoption("--update-goldens", action="store_true", help="refresh tests/golden/ files")


SRC = REPO / "src"


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a kubegate subprocess: this checkout's sources, no user config leaking in."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("DOCKER_CONFIG", None)
    env.pop("KUBEGATE_DB", None)
    # Advisory updates go to a closed loopback port unless a test serves a bucket itself.
    env["KUBEGATE_DB_SOURCE"] = "http://127.0.0.1:9/"
    if extra:
        env.update(extra)
    return env


RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run ``kubegate ARGS...``; a private cache dir per test unless ``env`` overrides it.

    The user config directory is ``tmp_path/xdg-config/kubegate`` (:func:`user_config`), so
    the developer's own ``~/.config/kubegate`` never reaches a test.
    """

    def _run(
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = 90,
    ) -> subprocess.CompletedProcess[str]:
        base = {
            "KUBEGATE_CACHE_DIR": str(tmp_path / "kubegate-cache"),
            "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
            "NO_COLOR": "1",
        }
        base.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "kubegate", *args],
            cwd=cwd or tmp_path,
            env=cli_env(base),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return _run


def user_config(tmp_path: Path) -> Path:
    """The kubegate user config directory ``run_cli`` gives the command (created)."""
    directory = tmp_path / "xdg-config" / "kubegate"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """In-process calls (``render()``'s build cache, the offline kubeconfig) write into a
    session directory, never into the developer's own ``~/.cache/kubegate``; tests that need
    their own set ``KUBEGATE_CACHE_DIR`` themselves (``run_cli`` does, per test)."""
    if os.environ.get("KUBEGATE_CACHE_DIR"):
        yield
        return
    os.environ["KUBEGATE_CACHE_DIR"] = str(tmp_path_factory.mktemp("kubegate-cache"))
    try:
        yield
    finally:
        os.environ.pop("KUBEGATE_CACHE_DIR", None)
