"""Write a run's outputs: metrics.json, terwayd.log, PNG plots and a self-contained report.html."""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from emulator.sim.runner import Outcome, peers_rows, verdict_on_default
from emulator.sim.units import format_duration


def metrics_document(outcome: Outcome) -> dict[str, Any]:
    """Deterministic: no wall-clock figures, sorted keys (same seed → identical bytes)."""
    return {
        "scenario": outcome.main.scenario.name,
        "seed": outcome.main.scenario.seed,
        "passed": outcome.passed,
        "expectations": [{"expect": v.expectation.text, "passed": v.passed,
                          "observed": v.observed} for v in outcome.verdicts],
        "main": outcome.main.metrics(),
        "peers": [r.metrics() for r in outcome.peers],
        "peers_table": [_json_row(r) for r in peers_rows(outcome.all_runs)],
    }


def _json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else
                round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}


def write_outputs(outcome: Outcome, out_dir: str, *, plots: bool = True) -> dict[str, str]:
    """Everything into ``out_dir``; returns name → path."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"metrics": os.path.join(out_dir, "metrics.json"),
             "log": os.path.join(out_dir, "terwayd.log"),
             "report": os.path.join(out_dir, "report.html")}
    with open(paths["metrics"], "w", encoding="utf-8") as fh:
        json.dump(metrics_document(outcome), fh, indent=1, sort_keys=True)
        fh.write("\n")
    with open(paths["log"], "w", encoding="utf-8") as fh:
        outcome.main.log.dump(fh)
    for peer in outcome.peers:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in peer.policy.name)
        with open(os.path.join(out_dir, f"terwayd.{safe}.log"), "w", encoding="utf-8") as fh:
            peer.log.dump(fh)
    if outcome.main.violation is not None:
        paths["violation"] = os.path.join(out_dir, "violation.txt")
        with open(paths["violation"], "w", encoding="utf-8") as fh:
            fh.write(outcome.main.violation.report() + "\n")
    images: dict[str, str] = {}
    if plots:
        from emulator.sim.plots import write_plots
        images = write_plots(outcome.main, outcome.all_runs, out_dir)
        paths.update({f"plot:{k}": v for k, v in images.items()})
    with open(paths["report"], "w", encoding="utf-8") as fh:
        fh.write(render_html(outcome, images))
    return paths


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.3g}"
    return html.escape(str(v))


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r.values()) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(path: str, title: str) -> str:
    with open(path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode("ascii")
    return f'<h3>{html.escape(title)}</h3><img alt="{html.escape(title)}" ' \
           f'src="data:image/png;base64,{data}">'


def render_html(outcome: Outcome, images: Mapping[str, str]) -> str:
    main = outcome.main
    sc = main.scenario
    status = "PASS" if outcome.passed else "FAIL"
    exp_rows = "".join(
        f'<tr class="{"ok" if v.passed else "bad"}"><td>{"pass" if v.passed else "FAIL"}</td>'
        f"<td><code>{html.escape(v.expectation.text)}</code></td>"
        f"<td>{html.escape(v.observed)}</td></tr>" for v in outcome.verdicts)
    rows = peers_rows(outcome.all_runs)
    scal = main.scalars()
    key_figs = [{"metric": k, "value": scal[k]} for k in (
        "pods_created", "pods_ready", "pod_events", "cni_failures", "api_calls",
        "api_calls_per_pod", "api_errors", "idle_ip_hours", "p50_network_ready",
        "p99_network_ready", "max_network_ready", "invariant_checks", "invariant_violations",
        "daemon_restarts", "leaked_enis") if k in scal]
    seed_lines = [ln for ln in main.log.lines if "IpNotEnough" in ln][:3]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>terway-sim: {html.escape(sc.name)}</title><style>",
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}",
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px}tr.ok td:first-child{color:#070}tr.bad td:first-child{color:#b00;"
        "font-weight:bold}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}"
        "img{max-width:100%}.status{font-size:20px;font-weight:bold}",
        "</style></head><body>",
        f"<h1>{html.escape(sc.name)}</h1>",
        f"<p class='status'>{status}</p>",
        f"<p>seed {sc.seed}; simulated {format_duration(main.sim_seconds)}; policy "
        f"<b>{html.escape(main.policy.name)}</b>; vSwitches "
        + ", ".join(f"{html.escape(k)} = <code>{html.escape(v)}</code>"
                    for k, v in main.vswitch_labels.items()) + "</p>",
        f"<pre>{html.escape(sc.description)}</pre>",
        "<h2>Expectations</h2><table><tr><th></th><th>expectation</th><th>observed</th></tr>",
        exp_rows, "</table>",
    ]
    if main.violation is not None:
        parts += ["<h2>Invariant violation</h2>",
                  f"<pre>{html.escape(main.violation.report())}</pre>"]
    parts += ["<h2>Key figures</h2>", _table(key_figs)]
    if outcome.peers:
        parts += ["<h2>Peers side by side</h2>",
                  "<p>Same workload, same seed, same cloud; only the pool policy differs. "
                  "The first row is this scenario's policy.</p>", _table(rows),
                  f"<p>{html.escape(verdict_on_default(rows))}</p>"]
        notes = sorted({n for r in outcome.all_runs for n in r.notes})
        if notes:
            parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    for title, path in images.items():
        parts.append(_img(path, title))
    if seed_lines:
        parts += ["<h2>The seed's log line, as the simulated daemon wrote it</h2>",
                  f"<pre>{html.escape(chr(10).join(seed_lines))}</pre>"]
    parts += ["<h2>Scenario file</h2>", f"<pre>{html.escape(sc.source)}</pre>",
              "</body></html>"]
    return "\n".join(parts)
