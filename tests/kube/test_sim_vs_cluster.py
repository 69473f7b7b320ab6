"""The simulator checked against the real cluster (issue 14 item 5; docs/sim-vs-cluster.md).

``bench.sim_vs_cluster`` runs scenarios/sim-vs-cluster.yaml in the simulator, replays the pods
it created (names, nodes, creation and deletion times) on a test bed of its own with terwayd and
the emulator answering with the scenario's latencies, and compares each measure with the
simulator's over 20 seeds, both as it is (its kubelet's ADD/DEL delays as the scenario models
the test bed's) and given the test bed's CNI ADD/DEL times: the median p50 within 20 % (or
5 ms), the test bed's API calls per pod and p99 within the simulator's range give or take 10 %
and 20 % (one test-bed run is one draw; docs/sim-vs-cluster.md has the medians over runs).
About 9 minutes (bring-up, 7 minutes of workload, teardown); the cluster is torn down whatever
happens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import sim_vs_cluster as svc
from simulator.scenario import load_scenario
from tests.kube.conftest import WORKDIR


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("sim-vs-cluster")
    code = svc.main(["--out", str(out), "--workdir", str(WORKDIR / "sim-vs-cluster")])
    result = json.loads((out / "result.json").read_text())
    result["exit"] = code
    result["report"] = (out / "report.md").read_text()
    return dict(result)


def test_both_sides_ran_the_same_pods(compared: dict[str, Any]) -> None:
    sim, timed, bed = compared["simulator"], compared["simulator_timed"], compared["test_bed"]
    schedule = compared["schedule"]
    assert len(schedule) >= 150
    assert sim["pods_ready"] == len(schedule), "every simulated pod got an address"
    assert bed["pods_ready"] == len(schedule), (
        f"every replayed pod got an address on the test bed: {bed['notes']}")
    assert timed["pods_ready"] == len(schedule)
    assert sim["cni_failures"] == timed["cni_failures"] == bed["cni_failures"] == 0
    assert not bed["notes"]["replay_errors"]
    assert bed["notes"]["replay_late_max_s"] < 1.0, "the replay kept to the schedule"
    assert sim["notes"]["pools_at_start"] == bed["notes"]["pools_at_start"], (
        "both sides start the window from the same pools")
    assert len(bed["notes"]["cni_add"]) == len(bed["notes"]["cni_del"]) == len(schedule), (
        "every pod's ADD and DEL found in the audit and containerd logs")


def _check_id(check: tuple[str, str, str]) -> str:
    which, measure, kind = check
    return f"{'timed' if which == svc.TIMED else 'plain'}-{measure}-{kind}"


@pytest.mark.parametrize("check", svc.CHECKS, ids=_check_id)
def test_the_simulator_predicts_the_test_bed(compared: dict[str, Any],
                                             check: tuple[str, str, str]) -> None:
    """Each of ``CHECKS`` (docs/sim-vs-cluster.md), for the simulator as it is and given the
    test bed's CNI ADD/DEL times: its median p50 within 20 % (or 5 ms) of the test bed's, and
    the test bed's API calls per pod and p99 ones the simulator produces (within its range
    over 20 seeds, give or take 10 % and 20 %)."""
    which, measure, kind = check
    row = {r["measure"]: r for r in compared["comparison"][which]}[measure]
    assert row[kind], (
        f"{which}: {measure}: simulator median {row['simulator']} (range {row['min']} to "
        f"{row['max']}) vs test bed {row['test_bed']}, ratio {row['ratio']}, tolerance "
        f"{row['tolerance']:.0%}\n{compared['report']}")


def test_the_scenarios_kubelet_delays_are_the_test_beds(compared: dict[str, Any]) -> None:
    """The simulator's kubelet delays in scenarios/sim-vs-cluster.yaml were measured on this
    test bed (docs/sim-vs-cluster.md): on a real node the ADD comes after the sandbox is set up,
    a burst's ADDs spread over seconds, and the DEL after the containers are stopped. Each run
    checks the measurement still holds (medians within half of the scenario's)."""
    kubelet = load_scenario(str(svc.SCENARIO)).kubelet
    plans = [svc.PodPlan(**p) for p in compared["schedule"]]
    bed = compared["test_bed"]["notes"]
    add = svc.lags(plans, bed["cni_add"])
    dele = svc.lags(plans, bed["cni_del"], delete=True)
    assert add["p50"] is not None and 0.5 <= add["p50"] / kubelet.add_delay <= 1.5, add
    assert add["p100"] is not None and add["p100"] > 1.0, "a burst's ADDs spread over seconds"
    assert dele["p50"] is not None and 0.5 <= dele["p50"] / kubelet.del_delay <= 1.5, dele


def test_the_verdict_is_the_exit_status(compared: dict[str, Any]) -> None:
    assert set(compared["comparison"]) == {svc.TIMED, svc.PLAIN}
    assert compared["failed"] == svc.verdict(compared["comparison"])
    assert compared["exit"] == (1 if compared["failed"] else 0)
    for which in (svc.TIMED, svc.PLAIN):
        assert len(compared["ensembles"][which]) == svc.SEEDS


def _ensemble(calls: list[int], p99: list[float]) -> svc.Ensemble:
    """Runs of 100 pods: ``calls`` API calls each, the slowest pods at ``p99``."""
    return svc.Ensemble("simulator", [
        svc.Side("simulator", {"AssignPrivateIpAddresses": n},
                 {f"p{i}": 0.01 if i < 90 else slow for i in range(100)}, 0)
        for n, slow in zip(calls, p99, strict=True)])


def test_the_comparison_can_fail() -> None:
    """The median 12 % off in calls, or a test bed p99 outside the simulator's range by more
    than the tolerance, is out; the checks name what failed."""
    ens = _ensemble([100, 104, 96], [4.0, 5.0, 6.0])
    same = svc.Side("test bed", {"AssignPrivateIpAddresses": 100},
                    {f"p{i}": 0.01 if i < 90 else 5.0 for i in range(100)}, 0)
    rows = {r["measure"]: r for r in svc.compare(ens, same)}
    assert all(r["within"] and r["in_range"] for r in rows.values())
    more = svc.Side("test bed", {"AssignPrivateIpAddresses": 112}, dict(same.network_ready), 0)
    rows = {r["measure"]: r for r in svc.compare(ens, more)}
    assert not rows["api_calls_per_pod"]["within"] and rows["api_calls_per_pod"]["in_range"]
    slow = svc.Side("test bed", dict(same.calls),
                    {k: v if v < 1 else 7.3 for k, v in same.network_ready.items()}, 0)
    rows = {r["measure"]: r for r in svc.compare(ens, slow)}
    assert not rows["p99_network_ready"]["in_range"]
    assert rows["p50_network_ready"]["within"]
    failed = svc.verdict({svc.TIMED: svc.compare(ens, slow), svc.PLAIN: svc.compare(ens, more)})
    assert len(failed) == 1 and "p99_network_ready: in range" in failed[0]


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
