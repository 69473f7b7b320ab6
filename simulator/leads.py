"""The regression gate on the adaptive policy's standing (issue 14 item 3).

``scenarios/leads.json`` records, per scenario, the axes on which the adaptive policy led or
tied for best among the scenario's runs (simulator/rankings.py), with its value then.
``terway-sim leads check OUT LEADS`` reads every ``OUT/*/metrics.json`` and fails when, on one
of those axes, it is no longer at least as good as the best other run, within ``REL_TOLERANCE``
of that run's value plus the axis' absolute slack (``rankings.AXES``). ``leads record``
rewrites the file from the runs; ``leads table`` only writes ``OUT/rankings.md`` (every
scenario's ranking table, as measured), which check and record write too.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from simulator.humanize import metric
from simulator.rankings import AXES, AXIS_KEYS, LABELS, SUBJECT_KIND, markdown
from simulator.units import SpecError
from terway.config.errors import did_you_mean

REL_TOLERANCE = 0.02       # 2 % of the best other run's value, plus the axis' slack
SLACK = {a.key: a.slack for a in AXES}
RECORDED = ("leads", "ties")
ABOUT = ("Per scenario, the axes on which the adaptive policy led or tied for best among the "
         "scenario's runs, as measured (terway-sim leads record). terway-sim leads check fails "
         "when it is no longer at least as good as the best other run on one of them "
         "(docs/simulator.md, 'Rankings and the gate').")


@dataclass(frozen=True)
class ScenarioRun:
    name: str
    seed: int
    path: str
    rankings: Mapping[str, Any] | None     # None: no peer ran


def load_runs(out_dir: str) -> dict[str, ScenarioRun]:
    """Every ``out_dir/*/metrics.json`` by scenario name."""
    runs: dict[str, ScenarioRun] = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*", "metrics.json"))):
        doc = _read_json(path)
        name = doc.get("scenario") if isinstance(doc, dict) else None
        if not isinstance(name, str):
            raise SpecError(path, "not a terway-sim metrics.json (no 'scenario' name)")
        if name in runs:
            raise SpecError(path, f"scenario {name!r} ran twice (also {runs[name].path})")
        runs[name] = ScenarioRun(name, int(doc.get("seed", 0)), path, doc.get("rankings"))
    if not runs:
        raise SpecError(out_dir, "no run found (DIR/*/metrics.json): run the scenarios first")
    return runs


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as e:
        raise SpecError(path, f"cannot read it: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise SpecError(path, f"not JSON: line {e.lineno} column {e.colno}: {e.msg}") from None


def load_leads(path: str) -> dict[str, dict[str, dict[str, Any]]]:
    """scenario → axis → {status, value, …}; every problem of the file at once (exit 2)."""
    doc = _read_json(path)
    scenarios = doc.get("scenarios") if isinstance(doc, dict) else None
    if not isinstance(scenarios, dict):
        raise SpecError(f"{path}: scenarios", "expected a mapping of scenario name → axes")
    problems: list[tuple[str, str]] = []
    for name, axes in scenarios.items():
        where = f"{path}: scenarios.{name}"
        if not isinstance(axes, dict):
            problems.append((where, "expected a mapping of axis → {status, value}"))
            continue
        for axis, entry in axes.items():
            problems += _entry_problems(f"{where}.{axis}", axis, entry)
    if problems:
        raise SpecError.many(problems)
    return scenarios


def _entry_problems(where: str, axis: str, entry: object) -> list[tuple[str, str]]:
    if axis not in AXIS_KEYS:
        return [(where, f"unknown axis{did_you_mean(axis, AXIS_KEYS)} "
                        f"(axes: {', '.join(AXIS_KEYS)})")]
    if not isinstance(entry, dict):
        return [(where, "expected {status: leads|ties, value: number}")]
    out = []
    if entry.get("status") not in RECORDED:
        out.append((f"{where}.status", f"expected leads or ties, got {entry.get('status')!r}"))
    value = entry.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        out.append((f"{where}.value", f"expected a number, got {value!r}"))
    return out


def record(runs: Mapping[str, ScenarioRun],
           previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The leads document: for every ranked run, the axes where the subject leads or ties
    (an empty mapping when none); scenarios of ``previous`` not in ``runs`` are kept."""
    scenarios: dict[str, Any] = dict(previous or {})
    for name, run in runs.items():
        rk = run.rankings
        if rk is None or not _judged(run):
            continue
        scenarios[name] = {a: {"status": v["status"], "value": v["value"],
                               "best_other": v["best_other"]}
                           for a, v in rk["verdicts"].items() if v["status"] in RECORDED}
    return {"about": ABOUT, "subject_kind": SUBJECT_KIND,
            "scenarios": dict(sorted(scenarios.items()))}


def check(runs: Mapping[str, ScenarioRun], leads: Mapping[str, Mapping[str, Any]],
          only: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(failures, notes): one failure per recorded axis where the subject no longer leads or
    ties within the tolerance; notes say what still holds and what leads anew."""
    names = _selected(runs, leads, list(only))
    failures: list[str] = []
    notes: list[str] = []
    for name in names:
        run = runs.get(name)
        if run is None:
            raise SpecError(name, "in the leads file but not run (no metrics.json for it)")
        rk = run.rankings
        if rk is None or not _judged(run):
            failures.append(f"{name}: no {SUBJECT_KIND} run ranked against peers")
            continue
        for axis, was in leads[name].items():
            now = rk["verdicts"].get(axis)
            if now is None:
                failures.append(f"{name}: {axis}: not measured in {run.path}")
                continue
            ok, line = _judge(name, axis, was, now, str(rk["subject"]))
            (notes if ok else failures).append(line)
        notes += [f"new  {name}: {LABELS[a]}: now {v['status']} ({metric(a, v['value'])}); "
                  "not recorded (leads record keeps it)"
                  for a, v in rk["verdicts"].items()
                  if v["status"] in RECORDED and a not in leads[name]]
    notes += [f"new  {n}: not in the leads file (leads record adds it)" for n in sorted(runs)
              if n not in leads and (not only or n in only) and _judged(runs[n])]
    return failures, notes


def _judged(run: ScenarioRun) -> bool:
    """Peers ran and one of the runs is the adaptive policy."""
    return run.rankings is not None and run.rankings.get("subject_kind") == SUBJECT_KIND


def _selected(runs: Mapping[str, ScenarioRun], leads: Mapping[str, Any],
              only: list[str]) -> list[str]:
    known = set(runs) | set(leads)
    for name in only:
        if name not in known:
            raise SpecError("--only", f"unknown scenario {name!r}{did_you_mean(name, known)}")
    return sorted(n for n in leads if not only or n in only)


def within(axis: str, value: float, best: float) -> bool:
    """At least as good as ``best`` on ``axis`` (lower is better), within the tolerance."""
    return value <= best * (1 + REL_TOLERANCE) + SLACK[axis]


def _judge(name: str, axis: str, was: Mapping[str, Any], now: Mapping[str, Any],
           who: str) -> tuple[bool, str]:
    value, best = now["value"], now["best_other"]
    then = f"recorded: {was['status']} with {metric(axis, was['value'])}"
    if best is None:
        return True, f"ok   {name}: {LABELS[axis]}: no other run has a value ({then})"
    if value is not None and within(axis, value, best):
        return True, (f"ok   {name}: {LABELS[axis]}: {now['status']} with "
                      f"{metric(axis, value)}; best other {metric(axis, best)} ({then})")
    shown = metric(axis, value) if value is not None else "no value"
    return False, (f"{name}: {axis}: {who} no longer leads: {shown} against "
                   f"{metric(axis, best)} by {', '.join(now['best_by'])} ({then}; tolerance "
                   f"{REL_TOLERANCE:.0%} + {SLACK[axis]:g})")


def combined_markdown(runs: Mapping[str, ScenarioRun]) -> str:
    """Every ranked scenario's table as measured, then the scenarios no peer ran in."""
    parts = ["# Rankings per scenario\n",
             "Lower is better on every axis; the rank is in brackets, equal values share it. "
             "Written by `terway-sim leads` from each run's metrics.json.\n"]
    for name in sorted(runs):
        run = runs[name]
        if run.rankings is not None:
            parts.append(f"## {name} (seed {run.seed})\n\n{markdown(run.rankings)}")
    unranked = sorted(n for n, r in runs.items() if r.rankings is None)
    if unranked:
        parts.append(f"Not ranked (no peers ran): {', '.join(unranked)}.\n")
    return "\n".join(parts)


def write_markdown(runs: Mapping[str, ScenarioRun], out_dir: str) -> str:
    path = os.path.join(out_dir, "rankings.md")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(combined_markdown(runs))
    return path


def write_leads(doc: Mapping[str, Any], path: str) -> None:
    """One axis a line, so a re-recording reads as a short diff."""
    head = {k: v for k, v in doc.items() if k != "scenarios"}
    lines = ["{", *(f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()),
             ' "scenarios": {']
    scenarios = list(doc["scenarios"].items())
    for i, (name, axes) in enumerate(scenarios):
        entries = [f"   {json.dumps(a)}: {json.dumps(e)}" for a, e in axes.items()]
        body = ("{\n" + ",\n".join(entries) + "\n  }") if entries else "{}"
        lines.append(f"  {json.dumps(name)}: {body}" + ("," if i < len(scenarios) - 1 else ""))
    lines += [" }", "}"]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


__all__ = ["REL_TOLERANCE", "check", "combined_markdown", "load_leads", "load_runs", "record",
           "within", "write_leads", "write_markdown"]
