"""The report's interactive charts (inline SVG, simulator/svgchart.py) from a run's data.

Addresses per vSwitch with each vSwitch's capacity as a level; pods waiting, stuck and Running;
cloud API calls by action and result; network-ready latency per policy. Scenario events and the
first IpNotEnough are marked on the time charts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from simulator.engine import RunResult
from simulator.humanize import count
from simulator.svgchart import Bar, Level, LineChart, Marker, Series, bar_chart, line_chart
from simulator.timeline import capacities

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#d62728")
ERRORS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
OK = "#2ca02c"
TROUBLE = "#d62728"
SLO_SECONDS = 5.0
CDF_POINTS = 400


def markers(result: RunResult) -> list[Marker]:
    """Scenario events (grey) and the first IpNotEnough (red)."""
    out = [Marker(ev.at, ev.name or ev.action) for ev in result.scenario.events
           if ev.at <= result.sim_seconds]
    first = result.log.first.get("IpNotEnough")
    if first is not None:
        out.append(Marker(first, "first IpNotEnough", TROUBLE))
    return out


def addresses_chart(result: RunResult) -> str:
    """Used (solid), idle (dashed) and available (dotted) per vSwitch, capacity as a level.
    A capacity or an available count far above what is held would flatten every other line:
    such a level is named in the legend instead of drawn."""
    col = result.collector
    caps = capacities(result)
    series: list[Series] = []
    levels: list[Level] = []
    held = [col.series[f"{k}[{col.labels[v]}]"] for v in col.vswitch_ids for k in ("used_ips",
                                                                                    "idle_ips")]
    scale = 3 * max([x for s in held for x in s if not math.isnan(x)] + [1.0])
    for i, vid in enumerate(col.vswitch_ids):
        label, color = col.labels[vid], PALETTE[i % len(PALETTE)]
        cap = caps.get(label)
        shown = cap is not None and cap <= scale
        far = "" if shown or cap is None else f" (capacity {count(cap)}: above the chart)"
        series.append(Series(f"{label} used{far}", col.t, col.series[f"used_ips[{label}]"],
                             color))
        series.append(Series(f"{label} idle", col.t, col.series[f"idle_ips[{label}]"], color,
                             "6,3"))
        avail = col.series[f"available_ips[{label}]"]
        if max([a for a in avail if not math.isnan(a)] + [0.0]) <= scale:
            series.append(Series(f"{label} available", col.t, avail, color, "1.5,2.5"))
        if shown and cap is not None:
            levels.append(Level(cap, f"{label} capacity {count(cap)}", color))
    return line_chart(LineChart("chart-addresses", series, y_label="addresses",
                                markers=markers(result), levels=levels))


def pods_chart(result: RunResult) -> str:
    col = result.collector
    series = [Series("ContainerCreating (waiting for an address)", col.t,
                     col.series["pending_pods"], TROUBLE),
              Series("stuck (no vSwitch can help the node)", col.t, col.series["stuck_pods"],
                     "#8c564b", "6,3"),
              Series("Running", col.t, col.series["running_pods"], "#2ca02c")]
    return line_chart(LineChart("chart-pods", series, y_label="pods", markers=markers(result)))


def api_chart(result: RunResult) -> str:
    calls = result.collector.api_calls
    actions = sorted({a for a, _ in calls})
    codes = sorted({c for _, c in calls}, key=lambda c: (c != "OK", c))
    errors = [c for c in codes if c != "OK"]
    colors = {"OK": OK, **{c: ERRORS[i % len(ERRORS)] for i, c in enumerate(errors)}}
    bars = [Bar(a, [(c, float(calls[(a, c)]), colors[c]) for c in codes if calls.get((a, c))])
            for a in actions]
    legend = "".join(f'<span class="key"><i style="background:{colors[c]}"></i>{c}</span>'
                     for c in codes)
    return bar_chart("chart-api", bars, "calls") + f'<p class="keys">{legend}</p>'


def cdf_points(latencies: Sequence[float], points: int = CDF_POINTS
               ) -> tuple[list[float], list[float]]:
    """(latency, fraction of pods ready within it) at about ``points`` quantiles."""
    lat = sorted(latencies)
    n = len(lat)
    if n == 0:
        return [], []
    idx = sorted({min(n - 1, round(i * (n - 1) / points)) for i in range(points + 1)})
    return [lat[i] for i in idx], [(i + 1) / n for i in idx]


def latency_chart(runs: Sequence[RunResult]) -> str:
    series = []
    for i, r in enumerate(runs):
        xs, ys = cdf_points(r.collector.latencies)
        if xs:
            series.append(Series(r.policy.name, xs, ys, PALETTE[i % len(PALETTE)], step=True))
    return line_chart(LineChart("chart-latency", series, x_format="duration",
                                y_format="fraction", y_label="pods ready within", log_x=True,
                                markers=[Marker(SLO_SECONDS, "5 s SLO")]))


def all_charts(main: RunResult, runs: Sequence[RunResult]) -> list[tuple[str, str, str]]:
    """(title, what it shows, SVG) for each chart of the report."""
    return [
        ("Addresses per vSwitch", "used by pods (solid), idle in pools (dashed), left in the "
         "cloud (dotted); a vSwitch's capacity is the wide pale line", addresses_chart(main)),
        ("Pods", "waiting for an address vs Running; stuck: waiting on a node no vSwitch can "
         "help", pods_chart(main)),
        ("Cloud API calls", "by action and result (hover a bar)", api_chart(main)),
        ("Network-ready latency", "fraction of pods with an address within a time "
         "(log scale), every policy that ran", latency_chart(runs)),
    ]


__all__ = ["all_charts", "cdf_points", "markers"]
