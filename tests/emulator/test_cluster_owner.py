"""``python -m emulator.cluster up|down`` never replace or clean up a test-bed cluster whose
owning process still runs (no root needed: both refuse before touching anything)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.cluster.__main__ import main
from emulator.cluster.cluster import STATE_FILE, refuse_if_running
from emulator.cluster.procs import ClusterError
from emulator.fabric.registry import started


def _owned_by(workdir: Path, pid: int, since: int | None = None) -> Path:
    workdir.mkdir()
    state: dict[str, object] = {"pid": pid, "started": since or started(pid), "master": "i-x",
                                "nodes": []}
    (workdir / STATE_FILE).write_text(json.dumps(state))
    (workdir / "ready").write_text("")
    return workdir


@pytest.mark.parametrize("command", ["down", "up"])
def test_a_running_owners_cluster_is_left_alone(tmp_path: Path, command: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    workdir = _owned_by(tmp_path / "bed", os.getpid())
    before = sorted(p.name for p in workdir.iterdir())
    assert main([command, "--workdir", str(workdir)]) == 1
    err = capsys.readouterr().err
    assert f"a cluster is running in {workdir} (process {os.getpid()})" in err, err
    assert sorted(p.name for p in workdir.iterdir()) == before      # not even the marker


def test_a_dead_owners_cluster_may_be_cleaned_up(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()                                     # reaped: its pid runs nothing of ours
    refuse_if_running(_owned_by(tmp_path / "bed", child.pid))
    refuse_if_running(tmp_path / "none")             # no record at all: nothing to protect
    mine = started(os.getpid())
    assert mine is not None
    refuse_if_running(_owned_by(tmp_path / "reused", os.getpid(), mine - 1))   # its pid, reused
    with pytest.raises(ClusterError, match="stop it"):
        refuse_if_running(_owned_by(tmp_path / "live", os.getpid()))
