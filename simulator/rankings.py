"""Every run of a scenario (its policy and the peers) ranked on the axes that matter, and where
the adaptive policy stands on each: leads, ties or trails, by how much and behind whom.

One home for the comparison: the report's peers and ranking tables, metrics.json's
``peers_table`` and ``rankings``, the combined rankings.md and the regression gate
(simulator/leads.py) all read what this module computes. Lower is better on every axis; runs
with equal values (as metrics.json rounds them, 6 decimals) share a rank, the next rank skips
("1, 1, 3"); a missing value (NaN: no pod ready) is unranked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator.humanize import DASH, metric, number

if TYPE_CHECKING:
    from simulator.engine import RunResult

SUBJECT_KIND = "adaptive"      # the policy whose standing is judged (issue 14 item 3)


@dataclass(frozen=True)
class Axis:
    key: str
    label: str
    slack: float       # the gate's absolute tolerance on this axis (simulator/leads.py)


AXES: tuple[Axis, ...] = (
    Axis("api_calls_per_pod", "API calls per pod", 0.005),
    Axis("idle_ip_hours", "idle address-hours", 0.05),
    Axis("p50_network_ready", "p50 network-ready", 0.005),
    Axis("p99_network_ready", "p99 network-ready", 0.005),
    Axis("stuck_while_idle_pod_seconds", "pods stuck while addresses sat idle elsewhere", 0.0),
)
AXIS_KEYS: tuple[str, ...] = tuple(a.key for a in AXES)
LABELS: Mapping[str, str] = {a.key: a.label for a in AXES}
# the peers table: every axis and a few figures that explain them
ROW_KEYS: tuple[str, ...] = ("pods_ready", *AXIS_KEYS, "cni_failures", "api_errors")

Row = dict[str, Any]


def table_rows(runs: Sequence[RunResult]) -> list[Row]:
    """One row per run (the scenario's own policy first): name, kind and ``ROW_KEYS``."""
    rows: list[Row] = []
    for r in runs:
        s = r.scalars()
        rows.append({"policy": r.policy.name, "kind": r.policy.kind,
                     **{k: s.get(k, math.nan) for k in ROW_KEYS}})
    return rows


def _num(v: Any) -> float:
    return math.nan if v is None or isinstance(v, str) else float(v)


def _key(v: float) -> float:
    return round(v, 6)


def ranks(values: Sequence[float]) -> list[int | None]:
    """Competition ranks, lower value first: equal values share a rank and the next rank skips
    (``[2, 1, 2, 5] -> [2, 1, 2, 4]``); NaN is unranked (None)."""
    keys = [None if math.isnan(v) else _key(v) for v in values]
    present = [k for k in keys if k is not None]
    return [None if k is None else 1 + sum(1 for o in present if o < k) for k in keys]


def subject_index(rows: Sequence[Row]) -> int:
    """The run judged: the first of kind ``adaptive``, else the scenario's own (row 0)."""
    return next((i for i, r in enumerate(rows) if r["kind"] == SUBJECT_KIND), 0)


def compute(rows: Sequence[Row]) -> dict[str, Any]:
    """The ranking document (JSON-ready, metrics.json ``rankings``): every run's values and
    ranks per axis, and the subject's verdict per axis against the best other run."""
    me = subject_index(rows)
    by_axis = {a: ranks([_num(r[a]) for r in rows]) for a in AXIS_KEYS}
    runs = [{"policy": r["policy"], "kind": r["kind"],
             "values": {a: _clean(_num(r[a])) for a in AXIS_KEYS},
             "ranks": {a: by_axis[a][i] for a in AXIS_KEYS}} for i, r in enumerate(rows)]
    verdicts = {a: _verdict(rows, me, a, by_axis[a]) for a in AXIS_KEYS}
    status = {s: [a for a in AXIS_KEYS if verdicts[a]["status"] == s]
              for s in ("leads", "ties", "trails")}
    return {"axes": list(AXIS_KEYS), "subject": rows[me]["policy"] if rows else None,
            "subject_kind": rows[me]["kind"] if rows else None, "runs": runs,
            "verdicts": verdicts, "leads_on": status["leads"], "ties_on": status["ties"],
            "trails_on": status["trails"],
            "goal_met": bool(rows) and not status["trails"] and len(status["leads"]) >= 2
            and not any(v["status"] == "unranked" for v in verdicts.values())}


def _verdict(rows: Sequence[Row], me: int, axis: str, rk: Sequence[int | None]
             ) -> dict[str, Any]:
    """Where run ``me`` stands on ``axis`` against the best of the others."""
    mine = _num(rows[me][axis])
    others = [(_num(r[axis]), str(r["policy"])) for i, r in enumerate(rows)
              if i != me and not math.isnan(_num(r[axis]))]
    out: dict[str, Any] = {"status": "unranked", "value": _clean(mine), "rank": rk[me],
                           "of": sum(1 for x in rk if x is not None), "best_other": None,
                           "best_by": [], "margin": None}
    if math.isnan(mine) or not others:
        return out
    best = min(v for v, _ in others)
    out["best_other"] = _clean(best)
    out["best_by"] = [n for v, n in others if _key(v) == _key(best)]
    out["margin"] = _clean(mine - best)
    out["status"] = ("ties" if _key(mine) == _key(best) else
                     "leads" if mine < best else "trails")
    return out


def _clean(v: float) -> float | None:
    return None if math.isnan(v) or math.isinf(v) else round(v, 6)


# -- words ----------------------------------------------------------------------------------------
def _fmt(axis: str, v: float | None) -> str:
    return DASH if v is None else metric(axis, v)


def _names(names: Sequence[str], others: int) -> str:
    """Who: every other run, up to three names, or the first three and how many more."""
    if len(names) == others and others > 1:
        return f"every other run ({others})"
    if len(names) <= 3:
        return ", ".join(names)
    return f"{', '.join(names[:3])} and {len(names) - 3} more"


def _pct(diff: float, base: float) -> str:
    """``, +13%``, or ``, 67 times`` from twice on; nothing against zero."""
    if not base:
        return ""
    r = diff / base
    return f", {number(1 + r, 2)} times" if r >= 1 else f", {r:+.0%}"


def verdict_line(doc: Mapping[str, Any], axis: str) -> str:
    """``idle address-hours: adaptive (ours) leads with 96.3 address-hours; next: aws … 99.2
    address-hours (2.9 address-hours more, +3%)`` — leads, ties or trails, by how much and
    behind whom."""
    f = _fmt
    v = doc["verdicts"][axis]
    who, label, mine, best = doc["subject"], LABELS[axis], v["value"], v["best_other"]
    names = _names(v["best_by"], len(doc["runs"]) - 1)
    if v["status"] == "leads":
        return (f"{label}: {who} leads with {f(axis, mine)}; next: {names} {f(axis, best)}"
                f" ({f(axis, -v['margin'])} more{_pct(-v['margin'], mine)})")
    if v["status"] == "ties":
        return f"{label}: {who} ties for best with {names} ({f(axis, mine)})"
    if v["status"] == "trails":
        return (f"{label}: {who} trails, rank {v['rank']} of {v['of']} with {f(axis, mine)}"
                f", behind {names} ({f(axis, best)}; {f(axis, v['margin'])} more"
                f"{_pct(v['margin'], best)})")
    return f"{label}: {who} unranked (no value)"


def goal_line(doc: Mapping[str, Any]) -> str:
    """The issue's goal, said plainly: at least as good as the best peer on every axis and
    strictly better on at least two."""
    leads, trails = doc["leads_on"], doc["trails_on"]
    said = (f"leads on {len(leads)} ({', '.join(LABELS[a] for a in leads) or 'none'}), "
            f"ties on {len(doc['ties_on'])}, trails on {len(trails)}"
            + (f" ({', '.join(LABELS[a] for a in trails)})" if trails else ""))
    return (f"{doc['subject']}: goal {'met' if doc['goal_met'] else 'NOT met'} (at least as "
            f"good as the best peer on every axis, strictly better on at least two): {said}.")


def markdown(doc: Mapping[str, Any]) -> str:
    """The ranking table as markdown (value and rank per axis, the subject in bold), then the
    verdict per axis and the goal line."""
    f = _fmt
    head = ["policy", *(LABELS[a] for a in doc["axes"])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in doc["runs"]:
        name = f"**{run['policy']}**" if run["policy"] == doc["subject"] else run["policy"]
        cells = [f"{f(a, run['values'][a])} ({run['ranks'][a] or DASH})" for a in doc["axes"]]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    lines.append("")
    lines += [f"- {verdict_line(doc, a)}" for a in doc["axes"]]
    lines += ["", goal_line(doc)]
    return "\n".join(lines) + "\n"


__all__ = ["AXES", "AXIS_KEYS", "SUBJECT_KIND", "compute", "goal_line", "markdown", "ranks",
           "table_rows", "verdict_line"]
