"""The simulator checked against the real cluster (issue 14 item 5; docs/sim-vs-cluster.md).

``bench.sim_vs_cluster`` runs scenarios/sim-vs-cluster.yaml in the simulator, replays the pods
it created (names, nodes, creation and deletion times) on a test bed of its own with terwayd and
the emulator answering with the scenario's latencies, and compares: API calls per pod within
10 %, p50 and p99 network-ready within 20 %. About 9 minutes (bring-up, 7 minutes of workload,
teardown); the cluster is torn down whatever happens.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import sim_vs_cluster as svc
from simulator.scenario import load_scenario
from tests.kube.conftest import WORKDIR


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("sim-vs-cluster")
    code = svc.main(["--out", str(out), "--workdir", str(WORKDIR / "sim-vs-cluster")])
    result = json.loads((out / "result.json").read_text())
    result["exit"] = code
    result["report"] = (out / "report.md").read_text()
    return dict(result)


def test_both_sides_ran_the_same_pods(compared: dict[str, object]) -> None:
    sim, bed = compared["simulator"], compared["test_bed"]
    assert isinstance(sim, dict) and isinstance(bed, dict)
    schedule = compared["schedule"]
    assert isinstance(schedule, list) and len(schedule) >= 150
    assert sim["pods_ready"] == len(schedule), "every simulated pod got an address"
    assert bed["pods_ready"] == len(schedule), (
        f"every replayed pod got an address on the test bed: {bed['notes']}")
    assert sim["cni_failures"] == bed["cni_failures"] == 0
    assert not bed["notes"]["replay_errors"]
    assert bed["notes"]["replay_late_max_s"] < 1.0, "the replay kept to the schedule"
    assert sim["notes"]["pools_at_start"] == bed["notes"]["pools_at_start"], (
        "both sides start the window from the same pools")


@pytest.mark.parametrize("measure", sorted(svc.TOLERANCE))
def test_the_simulator_predicts_the_test_bed(compared: dict[str, object], measure: str) -> None:
    rows = {r["measure"]: r for r in compared["comparison"]}  # type: ignore[attr-defined]
    row = rows[measure]
    assert row["simulator"] is not None and row["test_bed"] is not None
    assert not math.isnan(row["ratio"])
    assert abs(row["ratio"] - 1) <= svc.TOLERANCE[measure], (
        f"{measure}: simulator {row['simulator']} vs test bed {row['test_bed']} "
        f"(ratio {row['ratio']}, tolerance {svc.TOLERANCE[measure]:.0%})\n{compared['report']}")


def test_the_verdict_is_the_exit_status(compared: dict[str, object]) -> None:
    rows = compared["comparison"]
    assert isinstance(rows, list) and len(rows) == len(svc.TOLERANCE)
    assert compared["exit"] == (0 if all(r["within"] for r in rows) else 1)


def test_the_comparison_can_fail() -> None:
    """A side that made 12 % more calls per pod, or whose p99 is 25 % off, is out."""
    sim = svc.Side("simulator", {"AssignPrivateIpAddresses": 100},
                   {f"p{i}": 0.1 + i / 100 for i in range(100)}, 0)
    same = svc.Side("test bed", dict(sim.calls), dict(sim.network_ready), 0)
    assert all(r["within"] for r in svc.compare(sim, same))
    more_calls = svc.Side("test bed", {"AssignPrivateIpAddresses": 112},
                          dict(sim.network_ready), 0)
    verdict = {r["measure"]: r["within"] for r in svc.compare(sim, more_calls)}
    assert verdict == {"api_calls_per_pod": False, "p50_network_ready": True,
                       "p99_network_ready": True}
    slow_tail = svc.Side("test bed", dict(sim.calls),
                         {k: v * (1.25 if v > 1.0 else 1) for k, v in sim.network_ready.items()},
                         0)
    verdict = {r["measure"]: r["within"] for r in svc.compare(sim, slow_tail)}
    assert verdict == {"api_calls_per_pod": True, "p50_network_ready": True,
                       "p99_network_ready": False}


def test_the_latencies_installed_are_the_scenarios() -> None:
    """The emulator's latency rules build the very distributions the simulator samples."""
    from emulator.faults import build_rules

    sc = load_scenario(str(svc.SCENARIO))
    rules = build_rules(svc.latency_rules(sc.latency))
    assert {r.action for r in rules} == set(sc.latency)
    for rule in rules:
        want = sc.latency[rule.action]
        assert rule.dist is not None and rule.dist.kind == want.kind
        assert (rule.dist.a, rule.dist.b) == pytest.approx((want.a, want.b))
    assert not svc.check_fits_test_bed(sc)
    assert Path(svc.SCENARIO).exists()
