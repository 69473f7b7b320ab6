"""Write a run's outputs: metrics.json, terwayd.log, PNG plots and a self-contained report.html.

The page (simulator/page.py) tells the run's story; this module writes the files.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from simulator.page import render_html
from simulator.rankings import table_rows
from simulator.runner import Outcome


def metrics_document(outcome: Outcome) -> dict[str, Any]:
    """Deterministic: no wall-clock figures, sorted keys (same seed → identical bytes). When
    peers ran, ``peer_parameters`` states what each policy ran with (defaults included) and
    ``rankings`` every run's rank per axis and the adaptive policy's standing."""
    doc = {
        "scenario": outcome.main.scenario.name,
        "seed": outcome.main.scenario.seed,
        "passed": outcome.passed,
        "expectations": [{"expect": v.expectation.text, "passed": v.passed,
                          "observed": v.observed} for v in outcome.verdicts],
        "main": outcome.main.metrics(),
        "peers": [r.metrics() for r in outcome.peers],
        "peers_table": [_json_row(r) for r in table_rows(outcome.all_runs)],
    }
    if outcome.peers:
        doc["rankings"] = outcome.rankings()
        doc["peer_parameters"] = {r.policy.name: {"kind": r.policy.kind,
                                                  "parameters": dict(r.parameters),
                                                  "notes": list(r.notes)}
                                  for r in outcome.all_runs}
    return doc


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
        from simulator.plots import write_plots
        images = write_plots(outcome.main, outcome.all_runs, out_dir)
        paths.update({f"plot:{k}": v for k, v in images.items()})
    with open(paths["report"], "w", encoding="utf-8") as fh:
        fh.write(render_html(outcome, images))
    return paths


__all__ = ["metrics_document", "render_html", "write_outputs"]
