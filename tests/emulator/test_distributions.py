"""One distribution vocabulary (emulator/distributions.py) for fault rules and scenario files."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from emulator.distributions import Dist
from emulator.faults import build_rule
from simulator.dists import parse_dist
from simulator.units import SpecError

# the same distribution as a fault rule writes it (numbers) and as a scenario does (durations)
SAME: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"distribution": "constant", "value": 0.3}, {"dist": "constant", "value": "300ms"}),
    ({"distribution": "uniform", "low": 1, "high": 2}, {"dist": "uniform", "low": "1s",
                                                        "high": "2s"}),
    ({"distribution": "normal", "mean": 0.2, "sd": 0.05}, {"dist": "normal", "mean": "200ms",
                                                           "sd": "50ms"}),
    ({"distribution": "exponential", "mean": 60}, {"dist": "exponential", "mean": "1m"}),
    ({"distribution": "lognormal", "mu": math.log(0.5), "sigma": 0.3},
     {"dist": "lognormal", "median": "500ms", "sigma": 0.3}),
    ({"distribution": "lognormal", "median": 0.5, "p99": 2}, {"dist": "lognormal",
                                                              "median": 0.5, "p99": "2s"}),
]


@pytest.mark.parametrize(("fault", "scenario"), SAME)
def test_fault_rules_and_scenarios_read_the_same_vocabulary(fault: dict[str, Any],
                                                            scenario: dict[str, Any]) -> None:
    rule = build_rule({"kind": "latency", **fault})
    assert rule.dist is not None
    from_scenario = parse_dist(scenario, "f")
    assert rule.dist.kind == from_scenario.kind
    assert (rule.dist.a, rule.dist.b) == pytest.approx((from_scenario.a, from_scenario.b))


@pytest.mark.parametrize(("old", "new"), [
    ({"dist": "exp", "mean": "5m"}, {"dist": "exponential", "mean": "5m"}),
    ({"dist": "const", "value": 2}, {"dist": "constant", "value": 2}),
    ({"dist": "normal", "mean": 1, "stddev": 0.1}, {"dist": "normal", "mean": 1, "sd": 0.1}),
    ({"distribution": "uniform", "low": 1, "high": 2}, {"dist": "uniform", "low": 1, "high": 2}),
])
def test_old_spellings_still_read(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert parse_dist(old, "f") == parse_dist(new, "f")


def test_old_fault_spellings_still_read() -> None:
    rule = build_rule({"kind": "latency", "distribution": "normal", "mean": 0.2, "stddev": 0.05})
    assert rule.dist == Dist("normal", 0.2, 0.05)


def test_draws_are_the_same_whoever_reads_the_rule() -> None:
    dist = parse_dist({"dist": "lognormal", "median": "300ms", "p99": "2s"}, "f")
    draws = [dist.sample(random.Random(7)) for _ in range(2)]
    assert draws[0] == draws[1] and draws[0] > 0


@pytest.mark.parametrize(("spec", "field"), [
    ({"dist": "exponential", "mean": 0}, "f.mean"),      # the simulator read 0 as "always 0"
    ({"dist": "lognormal", "median": 0, "p99": 1}, "f.median"),
    ({"dist": "lognormal", "median": 2, "p99": 1}, "f.p99"),
    ({"dist": "uniform", "low": 2, "high": 1}, "f.high"),
    ({"dist": "lognormal", "mu": "x", "sigma": 1}, "f.mu"),
])
def test_bad_parameters_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_dist(spec, "f")
    assert info.value.field == field
