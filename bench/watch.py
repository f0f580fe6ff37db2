"""Benchmark: ``kubegate watch`` on the bench/gate.py fleet: idle polls and commit -> artifact.

Run by hand from the repository root (never in CI)::

    /work/venv/bin/python bench/watch.py [--polls 20] [--commits 2] [--keep DIR] [--strict]

What it does, in one run:

1. Builds and pushes the 60 images of bench/gate.py (same bytes every run) to a loopback
   ``docker-registry``, writes the same fleet (6 Flux Kustomizations, 300 image uses) into a
   git repository served over ``file://``, and imports ``examples/osv`` into a private database.
   The Debian base of that fleet carries findings (CRITICAL down to MEDIUM); so that the path to
   a published artifact is measured on the same scan work, the bench policy blocks only ``LOW``
   (``--severity LOW``), which this fleet has none of: every revision passes.
2. Starts ``python -m kubegate watch FILE_URL --ref main --publish oci://.../bench/fleet
   --interval 1s`` (PYTHONPATH=src, a fresh cache dir) and waits for the first artifact (cold:
   every image inventoried).
3. **Idle polls**: with the head unchanged, reads the process's CPU time (``/proc/PID/stat``:
   user + system of the process and of the ``git ls-remote`` children it waited for) and the
   ``kubegate_watch_polls_total`` counter at the start and the end of a window of ``--polls``
   polls; CPU per idle poll = the CPU difference / the polls done. Baseline, same run: the CPU
   of one bare ``git ls-remote`` of the same repository (the floor of a poll).
4. **Commit -> artifact**, ``--commits`` times: commits a change to one Deployment and measures
   the wall time from the end of ``git commit`` to the moment the registry's ``approved`` tag
   points at a new manifest (it includes up to one ``--interval`` of waiting for the next poll,
   and the scan, warm: only tags are resolved). Baseline, same run: ``kubegate scan FLEET
   --publish`` of the same fleet as a one-shot command with the same warm cache.

Targets (PASS/MISS; ``--strict`` exits 1 on a MISS): CPU per idle poll < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.gitserve import free_port, git  # noqa: E402

from bench.gate import BenchError, build_images, push_all, registry, write_db, write_fleet  # noqa: E402

IDLE_CPU_TARGET = 0.050
INTERVAL = "1s"
TIMEOUT = 600.0


def _log(message: str) -> None:
    print(f"bench/watch: {message}", file=sys.stderr, flush=True)


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        KUBEGATE_CACHE_DIR=str(cache),
        KUBEGATE_DB_SOURCE="http://127.0.0.1:9/",
        NO_COLOR="1",
    )
    env.pop("DOCKER_CONFIG", None)
    return env


def _cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid``, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def _metrics(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def _approved(server_url: str) -> str | None:
    response = httpx.head(
        f"{server_url}/v2/bench/fleet/manifests/approved",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


def _wait(what: str, predicate, process: subprocess.Popen[bytes]):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process.poll() is not None:
            raise BenchError(f"kubegate watch exited ({process.returncode}) waiting for {what}")
        time.sleep(0.05)
    raise BenchError(f"timed out waiting for {what}")


def _git_ls_remote_cpu(url: str, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            ["git", "ls-remote", url, "refs/heads/main"], capture_output=True, check=True
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return best


def _commit(repo: Path, round_: int) -> None:
    target = repo / "apps" / "team0" / "app-00.yaml"
    target.write_text(target.read_text() + f"# bench round {round_}\n")
    git("commit", "-q", "-am", f"bench round {round_}", cwd=repo)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--polls", type=int, default=20, help="idle polls measured")
    parser.add_argument("--commits", type=int, default=2, help="commit -> artifact rounds")
    parser.add_argument("--keep", type=Path, help="work in this (new) directory and keep it")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="kubegate-bench-watch-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        work = base / "work"
        work.mkdir(parents=True)
        images = build_images()
        with registry(base / "registry") as server:
            push_all(server, images)
            repo = base / "fleet"
            write_fleet(repo, [server.ref(i.repository, i.tag) for i in images])
            git("init", "-q", "-b", "main", cwd=repo)
            git("add", "-A", cwd=repo)
            git("commit", "-q", "-m", "fleet", cwd=repo)
            db = write_db(work)
            cache = base / "cache"
            port = free_port()
            target = f"oci://{server.host}/bench/fleet"
            common = ["--db", str(db), "--skip-db-update", "--severity", "LOW", "-q"]
            log = (base / "watch.log").open("wb")
            started = time.perf_counter()
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "kubegate", "watch", repo.as_uri(), "--ref", "main",
                    "--publish", target, "--interval", INTERVAL, "--listen", f"127.0.0.1:{port}",
                    *common,
                ],
                env=_env(cache), stdout=log, stderr=subprocess.STDOUT, cwd=work,
            )  # fmt: skip
            first = _wait("the first artifact", lambda: _approved(server.url), process)
            cold = time.perf_counter() - started
            _log(f"first artifact (cold, from process start) after {cold:.1f} s")
            # Idle polls.
            _wait("the metrics", lambda: _metrics(port).get("kubegate_watch_polls_total"), process)
            polls0 = _metrics(port)["kubegate_watch_polls_total"]
            cpu0 = _cpu_seconds(process.pid)
            time.sleep(args.polls * 1.0 + 0.5)
            cpu1 = _cpu_seconds(process.pid)
            polls1 = _metrics(port)["kubegate_watch_polls_total"]
            scans = _metrics(port)['kubegate_watch_scans_total{verdict="PASS"}']
            if scans != 1:
                raise BenchError(f"{scans} scans while the head did not move (expected 1)")
            idle = (cpu1 - cpu0) / max(1.0, polls1 - polls0)
            floor = _git_ls_remote_cpu(repo.as_uri())
            # Commit -> artifact.
            latencies = []
            previous = first
            for round_ in range(args.commits):
                _commit(repo, round_)
                committed = time.perf_counter()
                previous = _wait(
                    "the new artifact",
                    lambda p=previous: (d := _approved(server.url)) and d != p and d,
                    process,
                )
                latencies.append(time.perf_counter() - committed)
            process.terminate()
            if process.wait(timeout=120) != 0:
                raise BenchError(f"kubegate watch exited {process.returncode} on SIGTERM")
            # Baseline: the one-shot command on the same fleet and warm cache.
            _commit(repo, args.commits)
            one_shot = time.perf_counter()
            result = subprocess.run(
                [
                    sys.executable, "-m", "kubegate", "scan", repo.as_uri(), "--ref", "main",
                    "--publish", target, "--format", "json", *common,
                ],
                env=_env(cache), capture_output=True, cwd=work, check=False,
            )  # fmt: skip
            baseline = time.perf_counter() - one_shot
            if result.returncode != 0:
                raise BenchError(
                    f"scan --publish exited {result.returncode}: {result.stderr[-400:]!r}"
                )
            report = json.loads(result.stdout)
            uses = report["summary"]["uses"]
    except BenchError as exc:
        _log(f"error: {exc}")
        return 2
    finally:
        if process is not None and process.poll() is None:
            process.kill()
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    best = min(latencies)
    on_target = idle < IDLE_CPU_TARGET
    print(f"fleet: {len(images)} images, {uses} uses; interval {INTERVAL}")
    print(
        f"CPU per idle poll: {idle * 1000:.1f} ms over {polls1 - polls0:.0f} polls "
        f"(bare git ls-remote: {floor * 1000:.1f} ms, {idle / floor if floor else 0:.1f}x) "
        f"target < {IDLE_CPU_TARGET * 1000:.0f} ms: {'PASS' if on_target else 'MISS'}"
    )
    print(
        "commit -> published artifact: "
        + ", ".join(f"{t:.1f} s" for t in latencies)
        + f" (best {best:.1f} s; includes up to {INTERVAL} of poll wait)"
    )
    print(
        f"one-shot scan --publish, same fleet, warm cache: {baseline:.1f} s "
        f"(watch best / one-shot: {best / baseline:.2f}x)"
    )
    print(f"first artifact, cold (from process start): {cold:.1f} s")
    return 1 if args.strict and not on_target else 0


if __name__ == "__main__":
    sys.exit(main())
