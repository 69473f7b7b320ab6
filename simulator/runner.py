"""Run a scenario: the main policy, its peers (optionally in parallel processes), the verdicts."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from simulator.engine import Run, RunResult
from simulator.expect import Verdict, evaluate
from simulator.scenario import PolicySpec, Scenario


@dataclass
class Outcome:
    main: RunResult
    peers: list[RunResult]
    verdicts: list[Verdict]

    @property
    def passed(self) -> bool:
        return self.main.violation is None and all(v.passed for v in self.verdicts)

    @property
    def failures(self) -> list[str]:
        out = [f"{v.expectation.text}  (observed: {v.observed})" for v in self.verdicts
               if not v.passed]
        if self.main.violation is not None:
            out.insert(0, str(self.main.violation))
        return out

    @property
    def all_runs(self) -> list[RunResult]:
        return [self.main, *self.peers]


def run_one(scenario: Scenario, policy: PolicySpec | None = None, progress: bool = False
            ) -> RunResult:
    return Run(scenario, policy, progress=progress).execute()


def check(scenario: Scenario, result: RunResult) -> list[Verdict]:
    scalars = result.scalars()
    series = result.collector.series_view()
    return [evaluate(e, scalars, series) for e in scenario.expectations]


def run_scenario(scenario: Scenario, *, progress: bool = False, with_peers: bool = True,
                 jobs: int = 1) -> Outcome:
    """The scenario's own policy, then every peer that is not the same policy."""
    peers: Sequence[PolicySpec] = [p for p in scenario.peers if p != scenario.policy] \
        if with_peers else []
    if jobs > 1 and peers:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_one, scenario, p) for p in peers]
            main = run_one(scenario, None, progress)
            peer_results = [f.result() for f in futures]
    else:
        main = run_one(scenario, None, progress)
        peer_results = [run_one(scenario, p) for p in peers]
    return Outcome(main, peer_results, check(scenario, main))


def peers_rows(runs: Sequence[RunResult]) -> list[dict[str, float | str]]:
    """The comparison table: API calls per pod, idle address-hours, p50/p99 network-ready."""
    rows: list[dict[str, float | str]] = []
    for r in runs:
        s = r.scalars()
        rows.append({
            "policy": r.policy.name,
            "kind": r.policy.kind,
            "pods_ready": s["pods_ready"],
            "api_calls_per_pod": s["api_calls_per_pod"],
            "idle_ip_hours": s["idle_ip_hours"],
            "p50_network_ready": s["p50_network_ready"],
            "p99_network_ready": s["p99_network_ready"],
            "cni_failures": s["cni_failures"],
            "api_errors": s["api_errors"],
        })
    return rows


def _g3(column: str, value: float) -> str:
    return f"{value:.3g}"


def verdict_on_default(rows: Sequence[dict[str, float | str]],
                       fmt: Callable[[str, float], str] = _g3) -> str:
    """One honest sentence per column about where the default (first row) stands;
    ``fmt(column, value)`` writes a figure (the report gives it units)."""
    if len(rows) < 2:
        return ""
    ours = rows[0]
    parts = []
    for col, label in (("api_calls_per_pod", "API calls per pod"),
                       ("idle_ip_hours", "idle address-hours"),
                       ("p99_network_ready", "p99 network-ready")):
        vals = [(float(r[col]), str(r["policy"])) for r in rows
                if isinstance(r[col], float | int) and not math.isnan(float(r[col]))]
        if not vals:
            continue
        best_v, best = min(vals)
        mine = float(ours[col])
        rank = 1 + sum(1 for v, _ in vals if v < mine)
        if best == ours["policy"] or mine <= best_v:
            parts.append(f"{label}: {ours['policy']} is best ({fmt(col, mine)})")
        else:
            parts.append(f"{label}: {ours['policy']} ranks {rank}/{len(vals)} "
                         f"({fmt(col, mine)}; best {best} {fmt(col, best_v)})")
    return "; ".join(parts) + "."
