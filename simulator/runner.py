"""Run a scenario: the main policy, its peers (optionally in parallel processes), the verdicts;
how the runs compare lives in simulator/rankings.py."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from simulator.engine import Run, RunResult
from simulator.expect import Verdict, evaluate
from simulator.rankings import compute, table_rows
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

    def rankings(self) -> dict[str, Any] | None:
        """Every run ranked per axis and the adaptive policy's standing (simulator/rankings.py);
        None when no peer ran."""
        return compute(table_rows(self.all_runs)) if self.peers else None


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
