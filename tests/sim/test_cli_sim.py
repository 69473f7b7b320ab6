"""terway-sim as a command-line tool (issue 13): flags checked before any simulation, unknown
metrics are input errors, progress without carriage returns off a terminal, whole-run wall time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator import cli, collectors, planner
from simulator.cli import main
from simulator.engine import Run
from simulator.scenario import parse_scenario

PLAN = ["plan", "--vswitch-cidr", "10.0.0.0/24", "--nodes", "2",
        "--instance-type", "ecs.g6.xlarge"]


@pytest.mark.parametrize("flags, field", [
    (["--p99-target", "soon"], "--p99-target"),
    (["--p99-target", "0s"], "--p99-target"),
    (["--duration", "0"], "--duration"),
    (["--workers", "0"], "--workers"),
    (["--vswitch-cidr", "10.0.0.300/24"], "--vswitch-cidr"),
])
def test_plan_rejects_a_bad_flag_before_simulating(flags: list[str], field: str,
                                                   monkeypatch: Any, capsys: Any) -> None:
    def no_simulation(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("simulated before checking the flags")

    monkeypatch.setattr(planner, "execute", no_simulation)
    assert main([*PLAN, *flags, "--out", "unused"]) == 2
    assert f"terway-sim: {field}:" in capsys.readouterr().err


def _scenario(tmp_path: Path, mini: dict[str, Any], expectations: list[str]) -> str:
    mini["expectations"] = expectations
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(mini))
    return str(path)


def test_validate_and_run_call_an_unknown_metric_bad_input(tmp_path: Path, mini: dict[str, Any],
                                                           capsys: Any) -> None:
    path = _scenario(tmp_path, mini, ["invariant_violations == 0", "pending_podz == 0"])
    assert main(["validate", path]) == 2
    err = capsys.readouterr().err
    assert "expectations[1]" in err and "'pending_podz'" in err
    assert "did you mean 'pending_pods'?" in err
    assert main(["run", path, "--out", str(tmp_path / "o"), "--no-plots"]) == 2
    assert "'pending_podz'" in capsys.readouterr().err


@pytest.mark.parametrize("expectation, message", [
    ("api_callz[CreateNetworkInterface] > 0", "did you mean 'api_calls[CreateNetworkInterface]'"),
    ("p99_network_ready < 5s always", "not a time series"),
    ("zzz_qqq == 0", "unknown metric 'zzz_qqq' (known:"),
])
def test_other_metric_mistakes_are_named(expectation: str, message: str,
                                         mini: dict[str, Any]) -> None:
    mini["expectations"] = [expectation]
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_scenario(mini)


def test_every_metric_a_run_produces_is_known(mini: dict[str, Any]) -> None:
    result = Run(parse_scenario(mini)).execute()
    for key in result.scalars():
        name, bracket, _ = key.partition("[")
        assert name in (collectors.LABELLED_SCALARS if bracket else collectors.SCALARS), key
    for key in result.collector.series:
        name, bracket, _ = key.partition("[")
        assert name in (collectors.LABELLED_SERIES if bracket else collectors.SERIES), key


def test_progress_off_a_terminal_is_plain_lines(tmp_path: Path, mini: dict[str, Any],
                                                capsys: Any) -> None:
    path = _scenario(tmp_path, mini, ["invariant_violations == 0"])
    assert main(["run", path, "--out", str(tmp_path / "o"), "--no-plots", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("progress ")]
    tenths = [float(ln.split()[1].rstrip("%")) // 10 for ln in lines]
    assert tenths == sorted(set(tenths)) and len(tenths) >= 9     # one line per tenth


def test_wall_time_covers_the_whole_run(tmp_path: Path, mini: dict[str, Any], capsys: Any,
                                        monkeypatch: Any) -> None:
    ticks: Iterator[float] = iter([1000.0, 1123.5])
    monkeypatch.setattr(cli, "clock", lambda: next(ticks))
    path = _scenario(tmp_path, mini, ["invariant_violations == 0"])
    assert main(["run", path, "--out", str(tmp_path / "o"), "--no-plots"]) == 0
    assert "in 123.50s wall (main " in capsys.readouterr().out
