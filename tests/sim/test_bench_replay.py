"""``bench_sim --replay``: a run's core calls, replayed alone, reproduce the run's cores.

Why: docs/performance-sim.md takes the replay's time as a floor for any simulator running the
daemon's pool code. That holds only if the recording leaves the run as it was, the replay makes
the very calls the run made (the final state proves it, and a missing call must show), and
the patched name is put back.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import simulator.node as sim_node
from bench import bench_sim, replay
from simulator.engine import Run
from simulator.scenario import load_scenario
from terway.ipam.pool import IpamCore

Recorded = tuple[Path, dict[str, Any]]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    path = tmp_path_factory.mktemp("replay") / "calls.pickle"
    sc = load_scenario("ip-not-enough-pressure")   # failed calls, restarts, a new vSwitch
    figures, result = replay.record(sc, str(path))
    assert vars(sim_node)["IpamCore"] is IpamCore
    assert bench_sim.metrics_digest(result) == bench_sim.metrics_digest(Run(sc).execute())
    return path, figures


def test_the_replay_reproduces_every_core_of_the_run(recorded: Recorded) -> None:
    path, figures = recorded
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    every = replay.replay(str(path))
    calls = figures["calls"]
    assert every["same"] is True
    assert every["calls"] == sum(calls.values()) - calls[replay.NEW]
    assert calls[replay.NEW] == figures["cores"] > 0
    assert calls["on_command_failed"] > 0 and calls["restore"] > 0   # errors and restarts too
    assert calls["request_ip"] + calls["release_ip"] >= figures["events"] > 0
    fewer = replay.replay(str(path), replay.OBSERVATIONS)
    assert fewer["same"] is True
    assert fewer["calls"] == every["calls"] - sum(
        n for name, n in calls.items() if name in replay.OBSERVATIONS)


def test_a_replay_missing_calls_does_not_pass_as_the_run(recorded: Recorded) -> None:
    path, _ = recorded
    assert replay.replay(str(path), frozenset({"release_ip"}))["same"] is False


def test_the_replay_child_prints_both_replays_and_removes_the_file(
        recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, figures = recorded
    copy = tmp_path / "calls.pickle"
    copy.write_bytes(path.read_bytes())
    assert bench_sim.child("1k", None, replay_from=str(copy)) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["all"]["same"] and out["minimal"]["same"]
    assert not copy.exists()
    lines = replay.report(figures, out, "CPython", 60.0, {"wall": 10.0})
    assert "final state as in the run: yes" in lines[1]
    assert lines[2].startswith("  the whole run, untimed: 10.0s")
    assert "allows" in lines[3]
