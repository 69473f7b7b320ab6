"""The simulator under PyPy gives CPython's results, byte for byte.

Why: ``python -m bench.bench_sim --pypy ROOT`` times the large runs under PyPy
(docs/performance-sim.md) and its figures mean something only if PyPy runs the same simulation.
This builds or reuses the PyPy root of ``scripts/pypy.sh`` (root and debootstrap needed: the
test is privileged) and compares each scenario's metrics with this process's own run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.bench_sim import main, metrics_digest, pypy_command
from simulator.engine import Run
from simulator.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = ("steady", "ip-not-enough-pressure", "statefulset")
DIGEST = """
import sys
from bench.bench_sim import metrics_digest
from simulator.engine import Run
from simulator.scenario import load_scenario
for name in sys.argv[1:]:
    print(name, sys.implementation.name, metrics_digest(Run(load_scenario(name)).execute()))
"""

@pytest.fixture(scope="module")
def pypy_root() -> str:
    out = subprocess.run(["bash", str(REPO / "scripts/pypy.sh")], check=True,
                         capture_output=True, text=True, timeout=900)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.privileged
def test_pypy_runs_the_simulator_to_cpythons_results(pypy_root: str) -> None:
    out = subprocess.run(pypy_command(pypy_root, ["-c", DIGEST, *SCENARIOS]),
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    got = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()}
    for name in SCENARIOS:
        assert got[name][0] == "pypy", got
        cpython = metrics_digest(Run(load_scenario(name)).execute())
        assert got[name][1] == cpython, f"{name}: PyPy's metrics differ"


def test_a_root_pypy_sh_did_not_finish_is_refused_before_any_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--pypy", str(tmp_path), "--quick"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"--pypy {tmp_path}: " in err
    assert "needs root" in err or "not a root scripts/pypy.sh finished" in err
