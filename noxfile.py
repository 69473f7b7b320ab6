"""Developer and CI sessions. They reuse the current environment (set up by scripts/setup.sh)
so CI does not build a fresh virtualenv per session.

Our own tools run as ``python -m <module>`` from this directory, never through a console script
on PATH: that script belongs to whichever checkout was pip-installed last, not necessarily the
one this noxfile is in (``python -m`` puts the current directory first on sys.path)."""

from __future__ import annotations

import glob
import os

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "typecheck", "tests", "scenarios", "kube"]

PY_PATHS = ["terway", "emulator", "simulator", "tests", "bench", "noxfile.py"]
TERWAY_SIM = ("python", "-m", "simulator.cli")     # this checkout's terway-sim


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite. pytest's exit code 5 ("no tests collected") fails the session on purpose."""
    args = session.posargs or ["tests", "-m", "not kube"]
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *args)


@nox.session
def kube(session: nox.Session) -> None:
    """The Kubernetes test bed (as root): builds or reuses the upstream binaries and the images
    (cached outside the repository), then tests/kube/ brings a cluster up on emulated ECS
    instances, deploys the DaemonSet with kubectl apply -k, and tests the plugin through it."""
    built = {}
    for script in ("build.sh", "images.sh"):
        session.run("bash", f"scripts/kube/{script}")     # progress shown; then cached
        out = session.run("bash", f"scripts/kube/{script}", silent=True)
        built[script] = str(out).strip().splitlines()[-1]
    bin_dir, images = built["build.sh"], built["images.sh"]
    session.env["TERWAY_KUBE_BIN"], session.env["TERWAY_KUBE_IMAGES"] = bin_dir, images
    session.log(f"binaries: {bin_dir}; images: {images}")
    args = session.posargs or ["tests/kube", "tests/deploy", "-m", "kube"]
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *args)


@nox.session
def lint(session: nox.Session) -> None:
    session.run("ruff", "check", *PY_PATHS)


@nox.session
def typecheck(session: nox.Session) -> None:
    session.run("mypy", "terway", "emulator", "simulator")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: each prints ratios against a reference measured in the same run. As root,
    the simulator's large run is timed under PyPy too (scripts/pypy.sh builds or reuses it)."""
    names = session.posargs or sorted(
        os.path.splitext(os.path.basename(p))[0] for p in glob.glob("bench/bench_*.py")
    )
    for name in names:
        session.log(f"== {name}")
        args: list[str] = []
        if name == "bench_sim" and os.geteuid() == 0:
            session.run("bash", "scripts/pypy.sh")          # progress shown; then cached
            out = session.run("bash", "scripts/pypy.sh", silent=True)
            args = ["--pypy", str(out).strip().splitlines()[-1]]
        session.run("python", "-m", f"bench.{name}", *args)


@nox.session
def scenarios(session: nox.Session) -> None:
    """Every scenario in scenarios/, checked against its expectations, then the gate: fails
    where the adaptive policy no longer leads on an axis scenarios/leads.json records
    (``terway-sim leads record out/scenarios scenarios/leads.json`` re-records). Every
    scenario's ranking table: out/scenarios/rankings.md."""
    files = session.posargs or sorted(glob.glob("scenarios/*.yaml"))
    names = [os.path.splitext(os.path.basename(path))[0] for path in files]
    for path, name in zip(files, names, strict=True):
        session.run(*TERWAY_SIM, "run", path, "--out", f"out/scenarios/{name}")
    only = [arg for name in names for arg in ("--only", name)] if session.posargs else []
    session.run(*TERWAY_SIM, "leads", "check", "out/scenarios", "scenarios/leads.json", *only)


@nox.session
def main(session: nox.Session) -> None:
    """The main job: the seeds' IpNotEnough story against the embedded emulator, with its report —
    on 4 nodes as the seeds tell it, then on 1,000 nodes."""
    for name in ("ip-not-enough", "ip-not-enough-1000"):
        session.run(*TERWAY_SIM, "run", f"scenarios/{name}.yaml", "--out", f"out/{name}")
        session.log(f"report: out/{name}/report.html")


@nox.session
def e2e(session: nox.Session) -> None:
    """End-to-end: real runtimes (podman, Docker engine) and kind where it exists."""
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "e2e", "tests")
