"""report.html: one self-contained page that tells a run's story, top to bottom.

The headline (what went wrong, how bad, the remedy, the recovery — with units) and the verdict
beside it; the timeline of key moments; the expectations; the peers side by side and how they
rank when peers ran; interactive charts (inline SVG, simulator/svgchart.py); the nodes whose
pods waited; key figures; the daemons' log, whole lines; the scenario. No external file, no network.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from typing import Any

from simulator.charts import all_charts
from simulator.collectors import NodeWaits
from simulator.engine import RunResult
from simulator.humanize import DASH, clock, count, duration, metric, plural
from simulator.rankings import LABELS, goal_line, table_rows, verdict_line
from simulator.runner import Outcome
from simulator.simlog import KEYS as LOG_KEYS
from simulator.svgchart import SCRIPT, STYLE
from simulator.timeline import headline, moments, verdict_words

MAX_NODE_ROWS = 40
MAX_LOG_LINES = 2000
KEY_FIGURES = ("pods_created", "pods_ready", "pod_events", "cni_failures", "api_calls",
               "api_calls_per_pod", "api_errors", "idle_ip_hours", "mean_idle_ips",
               "stuck_while_idle_pod_seconds",
               "p50_network_ready", "p90_network_ready", "p99_network_ready",
               "max_network_ready", "first_ip_not_enough", "peak_addresses", "invariant_checks",
               "invariant_violations", "daemon_restarts", "leaked_enis")
PEER_COLUMNS = {"policy": "policy", "kind": "kind", "pods_ready": "pods ready",
                "api_calls_per_pod": "API calls per pod", "idle_ip_hours": "idle address-hours",
                "p50_network_ready": "p50 network-ready", "p99_network_ready": "p99 network-ready",
                "stuck_while_idle_pod_seconds": "stuck while idle elsewhere",
                "cni_failures": "CNI failures", "api_errors": "API errors"}

PAGE_STYLE = (
    "body{font-family:sans-serif;max-width:1040px;margin:1.5em auto;padding:0 1em;color:#222}"
    "h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #eee}"
    ".top{display:flex;gap:1em;align-items:flex-start;background:#f7f7fb;padding:.8em 1em;"
    "border-radius:6px}.headline{font-size:18px;line-height:1.4;margin:0;flex:1}"
    ".verdict{font-weight:bold;padding:.3em .7em;border-radius:4px;white-space:nowrap;margin:0}"
    ".verdict.pass{background:#e3f4e3;color:#060}.verdict.fail{background:#fbe3e3;color:#a00}"
    ".meta{color:#555;font-size:14px}"
    "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:3px 8px;"
    "font-size:13px;text-align:left;vertical-align:top}td.num{text-align:right;"
    "font-variant-numeric:tabular-nums}th{background:#f4f4f4}"
    "tr.ok td:first-child{color:#070}tr.bad td:first-child{color:#b00;font-weight:bold}"
    "tr.trouble td:nth-child(2){color:#b00}tr.remedy td:nth-child(2){color:#05a}"
    "tr.recovered td:nth-child(2){color:#070}"
    ".bar{display:inline-block;height:9px;background:#d62728;opacity:.7;margin-right:6px}"
    "pre{background:#f6f6f6;padding:1em;font-size:12px;white-space:pre-wrap;"
    "overflow-wrap:anywhere}pre.log{max-height:30em;overflow:auto}pre.log b{color:#a00}"
    ".keys .key{margin-right:1em;font-size:12px}.keys i{display:inline-block;width:10px;"
    "height:10px;margin-right:4px}.note{color:#666;font-size:13px}"
)


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = (),
           numeric: Sequence[bool] = ()) -> str:
    """Cells are HTML already (escaped by the caller); ``numeric`` right-aligns a column."""
    th = "".join(f"<th>{_esc(h)}</th>" for h in head)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
        cells = "".join(f'<td class="num">{c}</td>' if j < len(numeric) and numeric[j]
                        else f"<td>{c}</td>" for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{th}</tr>{''.join(body)}</table>"


def top_section(outcome: Outcome) -> str:
    """The story in one line, the verdict beside it, then what ran."""
    main = outcome.main
    sc = main.scenario
    verdict = verdict_words(outcome.passed, [v.passed for v in outcome.verdicts],
                            main.violation is not None)
    vsw = ", ".join(f"{_esc(k)} = <code>{_esc(v)}</code>" for k, v in main.vswitch_labels.items())
    return (f"<h1>{_esc(sc.name)}</h1><div class='top'>"
            f"<p class='headline' id='headline'>{_esc(headline(main))}</p>"
            f"<p class='verdict {'pass' if outcome.passed else 'fail'}'>{_esc(verdict)}</p>"
            f"</div><p class='meta'>seed {sc.seed}; simulated {_esc(duration(main.sim_seconds))}"
            f"; sampled every {_esc(duration(sc.sample_interval))}; pool policy "
            f"<b>{_esc(main.policy.name)}</b>; vSwitches {vsw}</p>")


def timeline_section(main: RunResult) -> str:
    ms = moments(main)
    rows = [[_esc(clock(m.t)), _esc(m.what), _esc(m.detail)] for m in ms]
    return ("<h2>Timeline</h2>" + _table(["time", "moment", "what happened"], rows,
                                         [m.kind for m in ms])
            + f"<p class='note'>Times are simulated time since the start; moments read from "
              f"gauges are exact to one sample ({_esc(duration(main.scenario.sample_interval))})"
              "; log lines and events are exact.</p>")


def expectations_section(outcome: Outcome) -> str:
    rows = [["pass" if v.passed else "FAIL", f"<code>{_esc(v.expectation.text)}</code>",
             _esc(v.observed)] for v in outcome.verdicts]
    classes = ["ok" if v.passed else "bad" for v in outcome.verdicts]
    out = "<h2>Expectations</h2>" + _table(["", "expectation", "observed"], rows, classes)
    if outcome.main.violation is not None:
        out += ("<h2>Invariant violation</h2>"
                f"<pre>{_esc(outcome.main.violation.report())}</pre>")
    return out


def _peer_cell(column: str, value: Any) -> str:
    if isinstance(value, str):
        return _esc(value)
    return _esc(metric(column, float(value)))


def peers_section(outcome: Outcome) -> str:
    """The peers table, whenever peers ran: same workload, seed and cloud, another policy; each
    row states the policy's effective parameters (defaults included) and the notes say what
    each peer models and how."""
    if not outcome.peers:
        return ""
    rows = table_rows(outcome.all_runs)
    cols = list(PEER_COLUMNS)
    cells = [[_peer_cell(c, r[c]) for c in cols] + [_esc(parameters_text(run.parameters))]
             for r, run in zip(rows, outcome.all_runs, strict=True)]
    notes = sorted({n for r in outcome.all_runs for n in r.notes})
    return ("<h2>Peers side by side</h2><p>Same workload, same seed, same cloud; only the pool "
            "policy differs. The first row is this scenario's policy.</p>"
            + _table([*(PEER_COLUMNS[c] for c in cols), "parameters (defaults included)"],
                     cells, ["ok"], [c not in ("policy", "kind") for c in cols] + [False])
            + ("<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>" if notes else "")
            + rankings_section(outcome))


def rankings_section(outcome: Outcome) -> str:
    """Every run ranked per axis (lower is better, ties share a rank; rank 1 in bold), then
    where the adaptive policy stands on each axis and whether it meets the goal."""
    doc = outcome.rankings()
    if doc is None:
        return ""
    axes = doc["axes"]
    cells, classes = [], []
    for run in doc["runs"]:
        row = [_esc(run["policy"])]
        for a in axes:
            v, rank = run["values"][a], run["ranks"][a]
            text = f"{_esc(metric(a, v) if v is not None else DASH)} ({rank or DASH})"
            row.append(f"<b>{text}</b>" if rank == 1 else text)
        cells.append(row)
        classes.append("ok" if run["policy"] == doc["subject"] else "")
    lines = "".join(f"<li>{_esc(verdict_line(doc, a))}</li>" for a in axes)
    return ("<h3 id='rankings'>Rankings</h3><p class='note'>Lower is better on every axis; the "
            "rank is in brackets, equal values share it. <i>Stuck while idle elsewhere</i>: "
            "pod-seconds a pod waited on a node that could get no address while other nodes' "
            "pools held idle ones on a vSwitch it could use (sampled).</p>"
            + _table(["policy", *(LABELS[a] for a in axes)], cells, classes,
                     [False, *(True for _ in axes)])
            + f"<ul>{lines}</ul><p><b>{_esc(goal_line(doc))}</b></p>")


def parameters_text(params: Mapping[str, Any]) -> str:
    """``name=value`` pairs in the order given (the policy's own first, then the core's)."""
    return ", ".join(f"{k}={v}" for k, v in params.items())


def charts_section(outcome: Outcome, images: Mapping[str, str]) -> str:
    parts = ["<h2>Charts</h2><p class='note'>Hover a chart for the values under the pointer; "
             "click a legend entry to hide or show its line.</p>"]
    for title, what, svg in all_charts(outcome.main, outcome.all_runs):
        parts.append(f"<h3>{_esc(title)}</h3><p class='note'>{_esc(what)}</p>{svg}")
    if images:
        links = ", ".join(f"<a href='{_esc(os.path.basename(p))}'>{_esc(os.path.basename(p))}"
                          "</a>" for p in images.values())
        parts.append(f"<p class='note'>Static PNG copies beside this file: {links}.</p>")
    return "".join(parts)


def _wait_row(name: str, w: NodeWaits, widest: float) -> list[str]:
    bar = f"<span class='bar' style='width:{max(1, round(80 * w.pod_seconds / widest))}px'>" \
          "</span>" if widest else ""
    return [_esc(name), count(w.peak_waiting), count(w.peak_stuck),
            f"{bar}{_esc(duration(w.pod_seconds))}", _esc(clock(w.first)), _esc(clock(w.last)),
            _esc(f"{w.waiting} ({w.stuck} stuck)" if w.stuck else str(w.waiting))]


def nodes_section(main: RunResult) -> str:
    """Nodes whose pods waited for an address: stuck ones first, then longest total wait."""
    waits = sorted(main.collector.node_waits.items(),
                   key=lambda kv: (-kv[1].stuck, -kv[1].peak_stuck, -kv[1].pod_seconds, kv[0]))
    if not waits:
        return "<h2>Waiting pods per node</h2><p>No sample found a pod waiting for an address.</p>"
    widest = max(w.pod_seconds for _, w in waits)
    rows = [_wait_row(name, w, widest) for name, w in waits[:MAX_NODE_ROWS]]
    more = len(waits) - MAX_NODE_ROWS
    classes = ["trouble" if w.stuck else "" for _, w in waits[:MAX_NODE_ROWS]]
    stuck = sum(1 for _, w in waits if w.peak_stuck)
    return ("<h2>Waiting pods per node</h2>"
            f"<p>{_esc(plural(len(waits), 'node'))} had a pod waiting for an address; "
            f"{_esc(plural(stuck, 'node'))} had a pod stuck.</p><p class='note'><i>Stuck</i>: "
            "waiting on a node no vSwitch can help (every ENI slot on a vSwitch with no address "
            "left). Pod time waiting is "
            "waiting pods times the sample interval.</p>"
            + _table(["node", "most waiting", "most stuck", "pod time waiting",
                      "first waiting", "last waiting", "waiting at the end"], rows, classes,
                     [False, True, True, False, False, False, True])
            + (f"<p class='note'>… and {count(more)} more nodes (metrics.json, "
               "main.waiting_by_node, has them all).</p>" if more > 0 else ""))


def figures_section(main: RunResult) -> str:
    scal = main.scalars()
    rows = [[_esc(k), _esc(metric(k, scal[k]))] for k in KEY_FIGURES if k in scal]
    return "<h2>Key figures</h2>" + _table(["metric", "value"], rows, (), [False, True])


def log_section(main: RunResult) -> str:
    """The daemons' log, whole lines in a scrollable box; lines naming a cloud refusal in bold.
    A long log shows only those lines (the file has everything)."""
    lines = main.log.lines
    keyed = [ln for ln in lines if any(k in ln for k in LOG_KEYS)]
    shown, what = (lines, "every line") if len(lines) <= MAX_LOG_LINES else \
        (keyed[:MAX_LOG_LINES], "the lines naming a cloud refusal")
    body = "\n".join(f"<b>{_esc(ln)}</b>" if any(k in ln for k in LOG_KEYS) else _esc(ln)
                     for ln in shown)
    total = len(lines) + main.log.dropped
    return (f"<h2>The daemons' log</h2><p class='note'>{_esc(what)} of terwayd.log "
            f"({count(len(shown))} of {count(total)} lines; refusals such as IpNotEnough in bold)"
            f"</p><pre class='log' id='log'>{body or _esc(DASH)}</pre>")


def scenario_section(main: RunResult) -> str:
    sc = main.scenario
    return (f"<h2>Scenario</h2><pre>{_esc(sc.description)}</pre>"
            f"<details><summary>Scenario file</summary><pre>{_esc(sc.source)}</pre></details>")


def render_html(outcome: Outcome, images: Mapping[str, str]) -> str:
    """The whole page; ``images``: PNG copies written beside it (linked, not needed)."""
    main = outcome.main
    body = [top_section(outcome), timeline_section(main), expectations_section(outcome),
            peers_section(outcome), charts_section(outcome, images), nodes_section(main),
            figures_section(main), log_section(main), scenario_section(main)]
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>terway-sim: {_esc(main.scenario.name)}</title>"
            f"<style>{PAGE_STYLE}{STYLE}</style></head><body>"
            + "\n".join(b for b in body if b)
            + f"<script>{SCRIPT}</script></body></html>")


__all__ = ["render_html"]
