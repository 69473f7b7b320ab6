"""Scenario files report every problem at once, unknown keys with a "did you mean"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.cli import main
from simulator.scenario import parse_scenario
from simulator.units import SpecError


def _three_mistakes(doc: dict[str, Any]) -> dict[str, Any]:
    doc["duration"] = "ten minutes"
    doc["cluster"]["nodez"] = 3
    doc["workload"][0]["lifetime"] = {"dist": "exponentail", "mean": "2m"}
    return doc


def test_three_independent_mistakes_are_three_problems(mini: dict[str, Any]) -> None:
    with pytest.raises(SpecError) as info:
        parse_scenario(_three_mistakes(mini))
    fields = sorted(p.split(":")[0] for p in info.value.problems)
    assert fields == ["cluster.nodez", "duration", "workload[0].lifetime.dist"]


def test_an_unknown_key_gets_a_suggestion(mini: dict[str, Any]) -> None:
    mini["sample_intreval"] = "5s"
    with pytest.raises(SpecError) as info:
        parse_scenario(mini)
    assert info.value.problems == (
        "sample_intreval: unknown field (did you mean 'sample_interval'?) (allowed: "
        "cluster, description, duration, eni_conf, events, expectations, faults, invariants, "
        "kubelet, latency, name, peers, policy, sample_interval, seed, workload)",)


@pytest.mark.parametrize(("mutate", "problems"), [
    (lambda d: d.update(policy={"kind": "cilium", "pre_alocate": 2, "min_allocate": -1}),
     ["policy.pre_alocate: not a parameter of policy 'cilium' (did you mean 'pre_allocate'?)",
      "policy.min_allocate: must be an integer >= 0"]),
    (lambda d: d.update(peers=[{"kind": "upstreem"}, {"kind": "terway", "max_pool_sise": 3}]),
     ["peers[0].kind: expected one of", "peers[1].max_pool_sise: not a parameter of policy "
      "'terway' (did you mean 'max_pool_size'?)"]),
    (lambda d: d["eni_conf"].update(max_pool_size="lots", ip_batch_window="90"),
     ["eni_conf.max_pool_size: must be an integer", "eni_conf.ip_batch_window: must be a "
      "duration"]),
    (lambda d: d["workload"][0].update(lifetime={"dist": "uniform", "low": "x", "hgh": 1}),
     ["workload[0].lifetime.hgh: not a parameter of uniform (did you mean 'high'?)",
      "workload[0].lifetime.high: required for uniform"]),
])
def test_each_problem_of_a_section_is_listed(mini: dict[str, Any], mutate: Any,
                                             problems: list[str]) -> None:
    mutate(mini)
    with pytest.raises(SpecError) as info:
        parse_scenario(mini)
    for expected in problems:
        assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


def test_validate_exits_2_listing_every_problem(tmp_path: Path, mini: dict[str, Any],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_three_mistakes(mini)))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"BAD {path}: 3 problems"
    assert [line.split(":")[0].strip() for line in err[1:]] == [
        "cluster.nodez", "duration", "workload[0].lifetime.dist"]
    assert "did you mean 'nodes'?" in err[1] and "did you mean 'exponential'?" in err[3]
