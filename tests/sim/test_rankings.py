"""Rankings and the gate (issue 14 item 3): every run ranked per axis with ties sharing a rank,
where the adaptive policy leads, ties or trails, the leads file recorded and checked (a
regression fails naming scenario and axis, bad input exits 2), and the new measure of pods
stuck while addresses sat idle elsewhere, on a hand-built case and in a tiny run."""

from __future__ import annotations

import copy
import json
import math
import os
from typing import Any

import pytest

from simulator import leads
from simulator.cli import main
from simulator.collectors import Collector, stuck_while_idle
from simulator.page import render_html
from simulator.rankings import compute, goal_line, markdown, ranks, verdict_line
from simulator.report import metrics_document
from simulator.runner import Outcome, run_scenario
from simulator.scenario import parse_scenario
from tests.sim.conftest import MINI

AXES = ("api_calls_per_pod", "idle_ip_hours", "p50_network_ready", "p99_network_ready",
        "stuck_while_idle_pod_seconds")


def row(policy: str, kind: str, *values: float) -> dict[str, Any]:
    return {"policy": policy, "kind": kind, **dict(zip(AXES, values, strict=True))}


def sample_rows(adaptive_idle: float = 50.0) -> list[dict[str, Any]]:
    """adaptive: leads on API calls and p99, ties on p50 and stuck, trails on idle."""
    return [row("adaptive (ours)", "adaptive", 0.2, adaptive_idle, 0.05, 4.0, 0.0),
            row("terway", "terway", 0.3, 40.0, 0.05, 5.0, 0.0),
            row("on-demand", "ondemand", 2.0, 1.0, 0.6, 6.0, 0.0)]


# -- ranks ----------------------------------------------------------------------------------------
def test_equal_values_share_a_rank_and_the_next_rank_skips() -> None:
    assert ranks([2.0, 1.0, 2.0, 5.0]) == [2, 1, 2, 4]
    assert ranks([0.0, 0.0, 0.0]) == [1, 1, 1]


def test_values_equal_as_metrics_json_rounds_them_tie_and_nan_is_unranked() -> None:
    assert ranks([1.0000001, 1.0, math.nan]) == [1, 1, None]
    assert ranks([1.00001, 1.0]) == [2, 1]


# -- where the adaptive policy stands --------------------------------------------------------------
def test_leads_ties_and_trails_per_axis_against_the_best_other_run() -> None:
    doc = compute(sample_rows())
    assert doc["subject"] == "adaptive (ours)"
    assert doc["leads_on"] == ["api_calls_per_pod", "p99_network_ready"]
    assert doc["ties_on"] == ["p50_network_ready", "stuck_while_idle_pod_seconds"]
    assert doc["trails_on"] == ["idle_ip_hours"]
    idle = doc["verdicts"]["idle_ip_hours"]
    assert (idle["rank"], idle["of"], idle["best_by"], idle["margin"]) == (3, 3, ["on-demand"],
                                                                          49.0)
    assert doc["verdicts"]["p50_network_ready"]["best_by"] == ["terway"]
    assert doc["runs"][1]["ranks"]["p50_network_ready"] == 1     # a tie shares rank 1
    assert doc["goal_met"] is False


def test_the_goal_is_met_only_with_no_trail_and_two_leads() -> None:
    assert compute(sample_rows(adaptive_idle=0.5))["goal_met"] is True
    one_lead = sample_rows(adaptive_idle=1.0)               # ties on idle: still no trail
    one_lead[0]["p99_network_ready"] = 5.0                  # now ties on p99 too: one lead
    assert compute(one_lead)["goal_met"] is False


def test_the_subject_is_the_adaptive_run_wherever_it_is() -> None:
    rows = sample_rows()
    doc = compute([rows[1], rows[2], rows[0]])
    assert doc["subject"] == "adaptive (ours)" and doc["trails_on"] == ["idle_ip_hours"]
    assert compute(rows[1:])["subject"] == "terway"          # no adaptive run: the main one


def test_the_words_say_by_how_much_and_behind_whom() -> None:
    doc = compute(sample_rows())
    assert verdict_line(doc, "idle_ip_hours") == (
        "idle address-hours: adaptive (ours) trails, rank 3 of 3 with 50 address-hours, behind "
        "on-demand (1 address-hours; 49 address-hours more, 50 times)")
    assert verdict_line(doc, "p99_network_ready").startswith(
        "p99 network-ready: adaptive (ours) leads with 4 s; next: terway 5 s (1 s more, +25%)")
    assert "ties for best with every other run (2)" in verdict_line(
        doc, "stuck_while_idle_pod_seconds")
    assert "goal NOT met" in goal_line(doc) and "trails on 1 (idle address-hours)" in goal_line(doc)
    table = markdown(doc)
    assert "| **adaptive (ours)** | 0.2 calls/pod (1) | 50 address-hours (3) |" in table


# -- the gate -------------------------------------------------------------------------------------
def write_run(out: str, scenario: str, rows: list[dict[str, Any]] | None) -> None:
    os.makedirs(os.path.join(out, scenario), exist_ok=True)
    doc: dict[str, Any] = {"scenario": scenario, "seed": 1}
    if rows is not None:
        doc["rankings"] = compute(rows)
    with open(os.path.join(out, scenario, "metrics.json"), "w", encoding="utf-8") as fh:
        json.dump(doc, fh)


@pytest.fixture
def recorded(tmp_path: Any) -> tuple[str, str]:
    out, path = str(tmp_path / "out"), str(tmp_path / "leads.json")
    write_run(out, "steady", sample_rows())
    write_run(out, "ip-not-enough", None)                   # no peers: not ranked
    assert main(["leads", "record", out, path]) == 0
    return out, path


def test_record_keeps_the_axes_where_adaptive_led_or_tied(recorded: tuple[str, str]) -> None:
    out, path = recorded
    doc = leads.load_leads(path)
    assert sorted(doc) == ["steady"]
    assert sorted(doc["steady"]) == ["api_calls_per_pod", "p50_network_ready",
                                     "p99_network_ready", "stuck_while_idle_pod_seconds"]
    assert doc["steady"]["p99_network_ready"] == {"status": "leads", "value": 4.0,
                                                  "best_other": 5.0}
    with open(os.path.join(out, "rankings.md"), encoding="utf-8") as fh:
        text = fh.read()
    assert "## steady (seed 1)" in text and "Not ranked (no peers ran): ip-not-enough." in text


def test_check_passes_while_adaptive_still_leads(recorded: tuple[str, str]) -> None:
    out, path = recorded
    assert main(["leads", "check", out, path]) == 0


def test_check_fails_naming_scenario_and_axis_when_a_lead_is_lost(
        recorded: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    out, path = recorded
    rows = sample_rows()
    rows[0]["p99_network_ready"] = 5.2                      # 4 % behind terway's 5 s
    write_run(out, "steady", rows)
    assert main(["leads", "check", out, path]) == 1
    err = capsys.readouterr().err
    assert "REGRESSION steady: p99_network_ready: adaptive (ours) no longer leads: 5.2 s " \
           "against 5 s by terway" in err
    assert "api_calls_per_pod" not in err


def test_a_tie_lost_on_a_zero_axis_fails_too(recorded: tuple[str, str]) -> None:
    out, path = recorded
    rows = sample_rows()
    rows[0]["stuck_while_idle_pod_seconds"] = 10.0
    write_run(out, "steady", rows)
    failures, _ = leads.check(leads.load_runs(out), leads.load_leads(path))
    assert [f.split(":")[:2] for f in failures] == [["steady", " stuck_while_idle_pod_seconds"]]


def test_within_the_tolerance_is_no_regression(recorded: tuple[str, str]) -> None:
    out, path = recorded
    rows = sample_rows()
    rows[0]["p99_network_ready"] = 5.0 * (1 + leads.REL_TOLERANCE * 0.9)
    write_run(out, "steady", rows)
    assert leads.check(leads.load_runs(out), leads.load_leads(path))[0] == []


@pytest.mark.parametrize(("content", "says"), [
    ("{not json", "not JSON: line 1"),
    ('{"scenarios": []}', "scenarios: expected a mapping"),
    ('{"scenarios": {"steady": {"p99_netwrk_ready": {"status": "leads", "value": 1}}}}',
     "unknown axis (did you mean 'p99_network_ready'?)"),
    ('{"scenarios": {"steady": {"p99_network_ready": {"status": "best", "value": "x"}}}}',
     "status: expected leads or ties, got 'best'"),
    ('{"scenarios": {"nosuch": {}}}', "nosuch: in the leads file but not run"),
])
def test_a_malformed_leads_file_is_bad_input(recorded: tuple[str, str], content: str, says: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out, path = recorded
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(content)
    assert main(["leads", "check", out, path]) == 2
    assert says in capsys.readouterr().err


def test_an_unknown_scenario_or_an_empty_directory_is_bad_input(
        recorded: tuple[str, str], tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out, path = recorded
    assert main(["leads", "check", out, path, "--only", "stedy"]) == 2
    assert "--only: unknown scenario 'stedy' (did you mean 'steady'?)" in capsys.readouterr().err
    assert main(["leads", "check", str(tmp_path / "none"), path]) == 2
    assert "no run found" in capsys.readouterr().err


def test_only_checks_the_scenarios_named(recorded: tuple[str, str]) -> None:
    out, path = recorded
    rows = sample_rows()
    rows[0]["api_calls_per_pod"] = 9.0
    write_run(out, "steady", rows)
    assert main(["leads", "check", out, path, "--only", "ip-not-enough"]) == 0
    assert main(["leads", "check", out, path, "--only", "steady"]) == 1


# -- pods stuck while addresses sat idle elsewhere ----------------------------------------------
def test_waiting_pods_count_up_to_the_idle_addresses_on_their_vswitches() -> None:
    assert stuck_while_idle([(3, ["vsw-a"]), (2, ["vsw-b"])], {"vsw-a": 2, "vsw-b": 0}) == 2
    assert stuck_while_idle([(3, ["vsw-a"])], {"vsw-a": 5}) == 3
    assert stuck_while_idle([(3, ["vsw-a"])], {"vsw-a": 0, "vsw-b": 9}) == 0
    assert stuck_while_idle([], {"vsw-a": 9}) == 0


def test_the_collector_integrates_them_over_time_as_sampled() -> None:
    col = Collector({"vsw-a": "a"})
    col.held["vsw-a"] = 4                    # 4 addresses on ENIs, none used: 4 idle
    col.sample(0.0, {"vsw-a": 0}, starved=[(3, ("vsw-a",))])
    col.sample(10.0, {"vsw-a": 0}, starved=[(1, ("vsw-a",))])
    col.sample(30.0, {"vsw-a": 0})
    assert col.series["stuck_while_idle"] == [3, 1, 0]
    assert col.scalars()["stuck_while_idle_pod_seconds"] == 3 * 10 + 1 * 20


@pytest.fixture(scope="module")
def tiny() -> Outcome:
    """Two nodes keep 6 addresses warm each on a /28 (12 usable): it runs dry; a third node
    joins and pods placed on it wait while the old pools hold idle addresses; an on-demand
    pool holds none, so its pods never wait for that."""
    doc = copy.deepcopy(MINI)
    doc.update(duration="6m", policy={"kind": "terway", "name": "warm 6"},
               peers=[{"kind": "ondemand", "name": "on-demand"}],
               workload=[{"kind": "deployment", "name": "web", "replicas": 2,
                          "schedule": [{"at": "2m", "replicas": 6}]}],
               events=[{"at": "1m", "action": "add_nodes", "count": 1}])
    doc["cluster"]["vswitches"] = [{"id": "vsw-a", "cidr": "10.0.0.0/28"}]
    doc["eni_conf"].update(min_pool_size=6, max_pool_size=6)
    return run_scenario(parse_scenario(doc))


def test_a_tiny_run_where_new_nodes_pods_wait_while_old_pools_hold_idle_addresses(
        tiny: Outcome) -> None:
    warm, ondemand = (r.scalars()["stuck_while_idle_pod_seconds"] for r in tiny.all_runs)
    assert warm >= 2 * 200 and ondemand == 0
    rk = tiny.rankings()
    assert rk is not None and rk["verdicts"]["stuck_while_idle_pod_seconds"]["status"] == "trails"


def test_the_report_and_metrics_carry_the_rankings(tiny: Outcome) -> None:
    page = render_html(tiny, {})
    section = page[page.index("<h3 id='rankings'>"):page.index("<h2>Charts</h2>")]
    assert "<b>0 pod-seconds (1)</b>" in section and "goal NOT met" in section
    assert "pods stuck while addresses sat idle elsewhere: warm 6 trails" in section
    doc = metrics_document(tiny)
    assert doc["rankings"]["runs"][1]["policy"] == "on-demand"
    assert "stuck_while_idle_pod_seconds" in doc["peers_table"][0]
    assert "rankings" not in metrics_document(Outcome(tiny.main, [], []))
