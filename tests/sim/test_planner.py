"""``terway-sim plan`` answers like an expert (issue 14 item 7): the workload summary, the best
p99 and by whom, what the pick costs, the adaptive policy among the candidates, plan.json and a
self-contained plan.html, and every flag checked before any simulation starts."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator import planner, sweep
from simulator.cli import build_parser, main
from simulator.humanize import number
from simulator.scenario import parse_scenario
from simulator.sweep import point_document
from simulator.units import SpecError

# 6 replicas from the start, then 4 pods at once at 5 min living 2 to 3 min: at most 10 pods at
# once, 10 created; a /29 (4 usable addresses) runs dry; 10 simulated minutes keep it fast.
WORKLOAD = {"workload": [
    {"kind": "deployment", "name": "svc", "replicas": 6},
    {"kind": "burst", "name": "batch", "at": "5m", "count": 4,
     "lifetime": {"dist": "uniform", "low": "2m", "high": "3m"}}]}


def _flags(tmp: Path, *extra: str) -> list[str]:
    wl = tmp / "workload.yaml"
    if not wl.exists():
        wl.write_text(yaml.safe_dump(WORKLOAD))
    return ["plan", "--vswitch-cidr", "10.0.0.0/29", "--nodes", "2", "--instance-type",
            "ecs.g6.xlarge", "--workload", str(wl), "--duration", "10m", "--workers", "1",
            "--out", str(tmp / "out"), *extra]


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[str], Path]:
    """One real plan (10 runs of 10 minutes on 2 nodes), with the points it ran."""
    tmp = tmp_path_factory.mktemp("plan")
    seen: list[Any] = []
    real = sweep.execute

    def recording(doc: Any, pts: Any, **kw: Any) -> Any:
        seen.append((doc, pts))
        return real(doc, pts, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(planner, "execute", recording)
    lines: list[str] = []
    try:
        args = build_parser().parse_args(_flags(tmp, "--p99-target", "60s"))
        assert planner.main_plan(args, printer=lines.append) == 0
    finally:
        mp.undo()
    assert len(seen) == 1
    doc, pts = seen[0]
    kinds = [parse_scenario(point_document(doc, s, o)).policy.kind for s, o in pts]
    p = json.loads((tmp / "out" / "plan.json").read_text())
    p["_kinds"] = kinds
    return p, lines, tmp / "out"


def test_the_adaptive_policy_runs_among_the_candidates(planned: Any) -> None:
    p, _, _ = planned
    names = [c["name"] for c in p["candidates"]]
    assert names[-1] == "adaptive" and len(names) == len(planner.POOL_GRID) + 1
    assert p["_kinds"][-1] == "adaptive" and set(p["_kinds"][:-1]) == {"terway"}
    assert p["adaptive"]["verdict"] and "adaptive: " + p["adaptive"]["verdict"] in planned[1]


def test_workload_summary(planned: Any) -> None:
    w = planned[0]["workload"]
    assert w["pods_created"] == 10 and w["peak_pods"] == 10 and w["nodes"] == 2
    assert 5 <= w["peak_pods_per_node"] <= 10 <= w["max_pods_per_node"]
    assert planned[1][0].startswith("workload: 10 pods created in 10 min; at most 10 at once "
                                    f"cluster-wide, {w['peak_pods_per_node']} on the busiest")


def test_best_p99_and_by_whom(planned: Any) -> None:
    p, lines, _ = planned
    best = min(p["candidates"], key=lambda c: c["p99_network_ready"])
    assert p["best_p99"]["seconds"] == best["p99_network_ready"]
    assert p["best_p99"]["by"] == best["name"] and p["best_p99"]["target_met"] is True
    assert any(ln.startswith("best p99 network-ready: ") and f" by {best['name']}; the 1 min "
               "target is met by all 9 candidates" in ln for ln in lines)


def test_the_pick_and_what_it_costs(planned: Any) -> None:
    p, lines, _ = planned
    rec = p["recommendation"]
    fewest = min(c["idle_ip_hours"] for c in p["candidates"] if c["meets_target"])
    assert rec["meets_target"] and rec["idle_ip_hours"] == fewest
    run = p["runs"][rec["run"]]["scalars"]
    assert rec["api_calls"] == run["api_calls"] > 0
    assert rec["api_calls_per_pod"] == pytest.approx(run["api_calls"] / run["pods_ready"])
    assert f"its cost: {number(rec['api_calls_per_pod'])} API calls per pod, " \
           f"{rec['api_calls']} API calls in total" in "\n".join(lines)


def test_ip_not_enough_and_the_vswitch_size(planned: Any) -> None:
    p, lines, _ = planned
    assert p["ip_not_enough_at"] is not None          # 4 addresses for 10 pods
    assert any(ln.startswith("IpNotEnough on the given vSwitches (min 0 / max 5): first at 00:")
               for ln in lines)
    assert p["addresses_available"] == 4 and p["addresses_needed"] > 4
    assert p["vswitch_prefix"] == planner.prefix_for(p["addresses_needed"])
    assert f"{p['addresses_needed'] - 4} short)" in lines[-2]


def test_plan_html_is_offline_with_both_plots(planned: Any) -> None:
    p, lines, out = planned
    page = (out / "plan.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    scatter = re.search(r'<svg class="scatter" id="plan-pareto".*?</svg>', page)
    assert scatter and scatter.group(0).count("<circle") >= 1
    assert all(c["name"] in scatter.group(0) for c in p["candidates"])
    assert 'stroke="#000"' in scatter.group(0)                   # the pick is ringed
    assert ">target 1 min</text>" in scatter.group(0)
    bars = re.search(r'<svg class="bars" id="plan-api".*?</svg>', page)
    assert bars and bars.group(0).count(">adaptive</text>") == 1
    assert lines[-1] == f"plots and every run: {out / 'plan.html'}"


def _cand(name: str, p99: float, idle: float, per_pod: float = 1.0) -> dict[str, Any]:
    return {"name": name, "policy": "adaptive" if name == "adaptive" else "terway",
            "p99_network_ready": p99, "idle_ip_hours": idle, "api_calls_per_pod": per_pod,
            "meets_target": p99 <= 5.0, "violation": None}


@pytest.mark.parametrize("adaptive, picked, verdict", [
    ((4.0, 10.0), "adaptive", "recommended: it meets the target (p99 4 s) with 10 idle "
                              "address-hours, fewer than the best fixed pool, min 1 / max 5"),
    ((4.0, 30.0), "min 1 / max 5", "not recommended: it meets the target (p99 4 s) but holds "
                                   "30 idle address-hours, more than min 1 / max 5"),
    ((6.0, 1.0), "min 1 / max 5", "not recommended: its p99 misses the 5 s target by 1 s (6 s), "
                                  "which min 1 / max 5"),
])
def test_the_adaptive_verdict(adaptive: tuple[float, float], picked: str, verdict: str) -> None:
    cands = [_cand("min 0 / max 0", 9.0, 1.0), _cand("min 1 / max 5", 3.0, 20.0),
             _cand("min 5 / max 10", 2.0, 50.0), _cand("adaptive", *adaptive)]
    pick, met = planner.recommend(cands)
    assert met and pick["name"] == picked
    assert planner.adaptive_verdict(cands, pick, met, 5.0)["verdict"].startswith(verdict)


def test_when_none_meets_the_target_the_nearest_is_named() -> None:
    cands = [_cand("min 0 / max 5", 7.0, 5.0), _cand("min 5 / max 10", 6.0, 40.0),
             _cand("adaptive", 6.5, 12.0)]
    pick, met = planner.recommend(cands)
    assert not met and pick["name"] == "min 5 / max 10"
    verdict = planner.adaptive_verdict(cands, pick, met, 5.0)["verdict"]
    assert verdict.startswith("misses the target as every candidate does: p99 6.5 s with 12 "
                              "idle address-hours, fewer than the nearest fixed pool, min 5")


def test_ties_on_idle_hours_go_to_fewer_api_calls() -> None:
    cands = [_cand("a", 1.0, 5.0, 2.0), _cand("b", 1.0, 5.0, 0.5), _cand("adaptive", 1.0, 6.0)]
    assert planner.recommend(cands)[0]["name"] == "b"
    assert math.isfinite(planner.recommend(cands)[0]["api_calls_per_pod"])


# -- every flag before any simulation ---------------------------------------------------------

def _bad_files(tmp: Path) -> dict[str, str]:
    (tmp / "broken.yaml").write_text("workload: [\n")
    (tmp / "no-list.yaml").write_text("x: 1\n")
    (tmp / "bad-kind.yaml").write_text(yaml.safe_dump({"workload": [{"kind": "nope"}]}))
    (tmp / "a-file").write_text("")
    return {n.split(".")[0]: str(tmp / n)
            for n in ("broken.yaml", "no-list.yaml", "bad-kind.yaml", "a-file")}


@pytest.mark.parametrize("flags, message", [
    (["--p99-target", "soon"], "--p99-target: "),
    (["--p99-target=-1s"], "--p99-target: "),
    (["--nodes", "0"], "--nodes: must be at least 1, got 0"),
    (["--workers", "0"], "--workers: must be at least 1"),
    (["--seed", "-1"], "--seed: must be 0 or more"),
    (["--duration", "0s"], "--duration: must be more than 0"),
    (["--workload", "nope"], "--workload: no preset or file 'nope'"),
    (["--workload", "/nonexistent/w.yaml"], "--workload: no preset or file"),
    (["--workload", "{tmp}"], "--workload: {tmp}: not a file"),
    (["--workload", "{broken}"], "--workload: {broken}: not YAML: "),
    (["--workload", "{no-list}"], "--workload: {no-list}: expected a list or a mapping with "
                                  "'workload'"),
    (["--workload", "{bad-kind}"], "--workload: workload[0].kind: expected one of"),
    (["--instance-type", "ecs.g6.xlarg"], "--instance-type: unknown instance type "
                                          "'ecs.g6.xlarg' (did you mean 'ecs.g6.xlarge'?)"),
    (["--vswitch-cidr", "10.0.0.300/24"], "--vswitch-cidr: not a CIDR"),
    (["--vswitch-cidr", "10.0.0.0/8"], "--vswitch-cidr: a vSwitch is an IPv4 /16../29"),
    (["--vswitch-cidr", "10.0.0.0/28"], "--vswitch-cidr: 10.0.0.0/28 overlaps 10.0.0.0/29"),
    (["--vswitch-cidr", "192.168.0.0/24"], "--vswitch-cidr: 192.168.0.0/24 is "
                                           "outside the simulated VPC 10.0.0.0/8"),
    (["--vswitch-cidr", "10.255.1.0/24"], "--vswitch-cidr: 10.255.1.0/24 overlaps the nodes' "
                                          "vSwitch 10.255.0.0/16"),
    (["--out", "{a-file}"], "--out: {a-file} exists and is not a directory"),
])
def test_a_bad_flag_stops_before_any_simulation(flags: list[str], message: str, tmp_path: Path,
                                                monkeypatch: Any, capsys: Any) -> None:
    def no_simulation(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("simulated before checking the flags")

    monkeypatch.setattr(planner, "execute", no_simulation)
    names = {"tmp": str(tmp_path), **_bad_files(tmp_path)}
    flags = [f.format(**names) for f in flags]
    assert main([*_flags(tmp_path), *flags]) == 2
    assert f"terway-sim: {message.format(**names)}" in capsys.readouterr().err


def test_a_document_problem_is_named_by_its_flag() -> None:
    e = SpecError.many([("vswitch vsw-2", "the cloud refused it: Overlapped"),
                                ("cluster.instance_type", "unknown"), ("latency", "odd")])
    got = planner._as_flags(e, ["10.0.0.0/24", "10.0.0.0/25"]).problems
    assert got == ("--vswitch-cidr: 10.0.0.0/25: the cloud refused it: Overlapped",
                   "--instance-type: cluster.instance_type: unknown", "latency: odd")
