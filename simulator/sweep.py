"""Sweeps: one scenario over seeds x parameter values, in parallel processes or on dask.

Each point re-validates the scenario document with its overrides applied (dotted paths into the
YAML, e.g. ``eni_conf.max_pool_size=5,10,20``), runs it without peers and returns its scalar
metrics, its pod peaks (cluster-wide and per node, as sampled) and verdicts. Locally points go
to a ``ProcessPoolExecutor``; with ``--dask-scheduler`` the same function is submitted to a
``dask.distributed.Client`` (imported only then).
"""

from __future__ import annotations

import argparse
import copy
import csv
import functools
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import yaml

from simulator.units import SpecError

if TYPE_CHECKING:
    from simulator.engine import Run

Point = tuple[int, dict[str, Any]]


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict (``workload[0].rate`` indexes lists)."""
    parts = path.split(".")
    node: Any = doc
    for i, part in enumerate(parts):
        key: Any = part
        index = None
        if part.endswith("]") and "[" in part:
            key, _, idx = part[:-1].partition("[")
            index = int(idx)
        last = i == len(parts) - 1
        if index is None:
            if last:
                node[key] = value
                return
            node = node.setdefault(key, {})
        else:
            seq = node[key]
            if last:
                seq[index] = value
                return
            node = seq[index]


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["eni_conf.max_pool_size=5,10"]`` → ``{"eni_conf.max_pool_size": [5, 10]}``."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        path, sep, values = spec.partition("=")
        if not sep or not path or not values:
            raise SpecError("--set", f"expected PATH=V1,V2,..., got {spec!r}")
        grid[path] = [yaml.safe_load(v) for v in values.split(",")]
    return grid


def points(seeds: Iterable[int], grid: Mapping[str, Sequence[Any]]) -> list[Point]:
    keys = sorted(grid)
    combos = itertools.product(*(grid[k] for k in keys)) if keys else [()]
    return [(seed, dict(zip(keys, combo, strict=True))) for combo in combos for seed in seeds]


def point_document(doc: Mapping[str, Any], seed: int, overrides: Mapping[str, Any]
                   ) -> dict[str, Any]:
    """The scenario document one point runs: ``doc`` with its overrides and seed, no peers."""
    data = copy.deepcopy(dict(doc))
    for path, value in overrides.items():
        set_path(data, path, value)
    data["seed"] = seed
    data.pop("peers", None)
    return data


@functools.cache
def _watched_run() -> type[Run]:
    """``Run`` that also records, at every sample, the peak of pods placed at once (pending or
    running), cluster-wide and on the busiest node: what the planner tells about the workload.
    Built on first use so that importing this module does not load the engine."""
    from simulator.engine import Run

    class WatchedRun(Run):
        peak_pods = 0
        peak_node_pods = 0

        def _sample(self) -> None:
            super()._sample()
            counts = [n.pod_count for n in self.nodes if n.alive]
            self.peak_pods = max(self.peak_pods, sum(counts))
            self.peak_node_pods = max([self.peak_node_pods, *counts])

    return WatchedRun


def run_point(doc: Mapping[str, Any], seed: int, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """One simulation (a picklable top-level function: processes and dask both call it)."""
    from simulator.runner import check
    from simulator.scenario import parse_scenario
    data = point_document(doc, seed, overrides)
    scenario = parse_scenario(data, source=yaml.safe_dump(data))
    run = _watched_run()(scenario)
    result = run.execute()
    verdicts = check(scenario, result)
    scalars = {k: (None if isinstance(v, float) and math.isnan(v) else v)
               for k, v in sorted(result.scalars().items())}
    return {"seed": seed, "overrides": dict(overrides), "scalars": scalars,
            "pods": {"peak": getattr(run, "peak_pods", 0),
                     "peak_per_node": getattr(run, "peak_node_pods", 0),
                     "max_per_node": min((n.max_pods for n in run.nodes), default=0)},
            "passed": result.violation is None and all(v.passed for v in verdicts),
            "failed": [v.expectation.text for v in verdicts if not v.passed],
            "violation": None if result.violation is None else result.violation.what}


def execute(doc: Mapping[str, Any], pts: Sequence[Point], *, workers: int = 1,
            dask_scheduler: str | None = None) -> list[dict[str, Any]]:
    """Run every point; results in the order of ``pts`` whatever the executor."""
    if dask_scheduler:
        return _on_dask(doc, pts, dask_scheduler)
    if workers <= 1:
        return [run_point(doc, s, o) for s, o in pts]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_point, doc, s, o) for s, o in pts]
        return [f.result() for f in futures]


def _on_dask(doc: Mapping[str, Any], pts: Sequence[Point], address: str) -> list[dict[str, Any]]:
    try:
        from dask.distributed import Client
    except ImportError:
        raise SpecError("--dask-scheduler", "dask.distributed is not installed; install it "
                        "with: pip install 'terway-py[dask]'") from None
    client = Client(address)  # type: ignore[no-untyped-call,unused-ignore]
    try:
        futures = [client.submit(run_point, doc, s, o, pure=False) for s, o in pts]
        return list(client.gather(futures))  # type: ignore[no-untyped-call,unused-ignore]
    finally:
        client.close()  # type: ignore[no-untyped-call,unused-ignore]


def summarize(results: Sequence[Mapping[str, Any]], metrics: Sequence[str]
              ) -> list[dict[str, Any]]:
    """Mean of each metric per parameter combination (over seeds)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in results:
        groups.setdefault(json.dumps(r["overrides"], sort_keys=True), []).append(r)
    rows = []
    for key, rs in groups.items():
        row: dict[str, Any] = dict(json.loads(key))
        row["runs"] = len(rs)
        row["passed"] = sum(1 for r in rs if r["passed"])
        for m in metrics:
            vals = [r["scalars"].get(m) for r in rs]
            nums = [float(v) for v in vals if isinstance(v, int | float)]
            row[m] = sum(nums) / len(nums) if nums else math.nan
        rows.append(row)
    return rows


SUMMARY_METRICS = ("api_calls_per_pod", "idle_ip_hours", "p50_network_ready",
                   "p99_network_ready", "cni_failures", "invariant_violations")


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="a scenario file, or a name from scenarios/")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="where sweep.json and sweep.csv go")
    p.add_argument("--seeds", default="1", help="e.g. 1-8 or 1,5,9")
    p.add_argument("--set", action="append", default=[], metavar="PATH=V1,V2",
                   help="a parameter axis, e.g. eni_conf.max_pool_size=5,10,20 (repeatable)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="runs in parallel processes (default: the number of CPUs)")
    p.add_argument("--dask-scheduler", default=None, metavar="ADDR",
                   help="submit to a dask.distributed scheduler (tcp://host:8786; default: "
                        "local processes)")


def parse_seeds(text: str) -> list[int]:
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise SpecError("--seeds", f"expected e.g. 1-8 or 1,5,9, got {text!r}") from None
    return out


def main_sweep(args: argparse.Namespace, printer: Callable[[str], None] = print) -> int:
    from simulator.scenario import parse_scenario, resolve_scenario_path
    path = resolve_scenario_path(args.scenario)
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    parse_scenario(doc)                                   # fail fast on a bad file
    if args.workers < 1:
        raise SpecError("--workers", f"must be at least 1, got {args.workers}")
    pts = points(parse_seeds(args.seeds), parse_grid(args.set))
    results = execute(doc, pts, workers=args.workers, dask_scheduler=args.dask_scheduler)
    rows = summarize(results, SUMMARY_METRICS)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "sweep.json"), "w", encoding="utf-8") as fh:
        json.dump({"scenario": doc.get("name"), "points": results, "summary": rows}, fh,
                  indent=1, sort_keys=True)
    with open(os.path.join(args.out, "sweep.csv"), "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["runs"])
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        printer("  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in row.items()))
    return 0 if all(r["passed"] for r in results) else 1
