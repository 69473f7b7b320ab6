"""PNG plots of a run (matplotlib, Agg backend: no display needed): static copies of the
report's interactive charts (simulator/charts.py), with the same markers and capacity lines."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from simulator.charts import markers
from simulator.engine import RunResult
from simulator.timeline import capacities
from simulator.units import format_duration


def _minutes(ts: Sequence[float]) -> list[float]:
    return [t / 60.0 for t in ts]


def _mark_events(ax: Any, result: RunResult) -> None:
    """Events and the first IpNotEnough as vertical lines, labelled inside the axes (a label
    near the right edge runs leftwards, close labels take separate rows: none is clipped)."""
    lo, hi = ax.get_xlim()
    for row, m in enumerate(sorted(markers(result), key=lambda m: m.x)):
        x = m.x / 60.0
        left = (x - lo) / (hi - lo) > 0.8
        ax.axvline(x, color=m.color, linestyle=":", linewidth=1)
        ax.text(x, 0.97 - 0.07 * (row % 3), f" {m.label} ", fontsize=7, va="top",
                ha="right" if left else "left", color=m.color,
                transform=ax.get_xaxis_transform())


def _capacity_lines(ax: Any, result: RunResult, colors: dict[str, Any]) -> None:
    """Each vSwitch's capacity, where it does not dwarf the addresses held."""
    top = ax.get_ylim()[1]
    shown = {k: c for k, c in capacities(result).items() if k in colors and c <= 3 * top}
    if shown:
        ax.set_ylim(top=max(top, 1.3 * max(shown.values())))     # room for the labels above
    for label, cap in shown.items():
        ax.axhline(cap, color=colors[label], linewidth=4, alpha=0.25)
        ax.text(ax.get_xlim()[1], cap, f"{label} capacity {cap:,} ", fontsize=7, ha="right",
                va="bottom", color=colors[label])


def plot_addresses(result: RunResult, path: str) -> None:
    col = result.collector
    t = _minutes(col.t)
    fig, ax = plt.subplots(figsize=(9, 4))
    colors: dict[str, Any] = {}
    for vid in col.vswitch_ids:
        label = col.labels[vid]
        used, idle = col.series[f"used_ips[{label}]"], col.series[f"idle_ips[{label}]"]
        line = ax.plot(t, used, label=f"{label} used")[0]
        colors[label] = line.get_color()
        ax.plot(t, idle, linestyle="--", color=line.get_color(), label=f"{label} idle")
        avail = col.series[f"available_ips[{label}]"]
        if any(not math.isnan(a) and a < 2000 for a in avail):
            ax.plot(t, avail, linestyle=":", color=line.get_color(), label=f"{label} available")
    ax.set_xlabel("minutes")
    ax.set_ylabel("addresses")
    ax.set_title("Addresses per vSwitch: used by pods, idle in pools, available in the cloud")
    _capacity_lines(ax, result, colors)
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    _mark_events(ax, result)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_pending(result: RunResult, path: str) -> None:
    col = result.collector
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(_minutes(col.t), col.series["pending_pods"], color="tab:red", label="ContainerCreating")
    ax.plot(_minutes(col.t), col.series["running_pods"], color="tab:green", label="Running")
    ax.set_xlabel("minutes")
    ax.set_ylabel("pods")
    ax.set_title("Pods waiting for an address vs running")
    ax.legend(fontsize=8)
    _mark_events(ax, result)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_api_calls(result: RunResult, path: str) -> None:
    calls = result.collector.api_calls
    actions = sorted({a for a, _ in calls})
    codes = sorted({c for _, c in calls}, key=lambda c: (c != "OK", c))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    left = [0.0] * len(actions)
    for code in codes:
        vals = [calls.get((a, code), 0) for a in actions]
        ax.barh(actions, vals, left=left, label=code)
        left = [x + v for x, v in zip(left, vals, strict=True)]
    ax.set_xlabel("calls")
    ax.set_title("Cloud API calls by action and result")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_latency_cdf(results: Sequence[RunResult], path: str) -> None:
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for r in results:
        lat = sorted(r.collector.latencies)
        if not lat:
            continue
        n = len(lat)
        ax.plot(lat, [(i + 1) / n for i in range(n)], label=r.policy.name)
    ax.set_xscale("log")
    ax.axvline(5.0, color="grey", linestyle=":", linewidth=1)
    ax.text(5.0, 0.02, " 5 s SLO", fontsize=7, color="grey")
    ax.set_xlabel("network-ready latency (s, log)")
    ax.set_ylabel("fraction of pods")
    ax.set_title("Network-ready latency CDF")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_plots(main: RunResult, all_runs: Sequence[RunResult], out_dir: str) -> dict[str, str]:
    """Write every plot into ``out_dir``; returns title → file path."""
    files = {
        "Addresses per vSwitch": os.path.join(out_dir, "addresses.png"),
        "Pending pods": os.path.join(out_dir, "pending_pods.png"),
        "API calls": os.path.join(out_dir, "api_calls.png"),
        "Network-ready latency CDF": os.path.join(out_dir, "latency_cdf.png"),
    }
    plot_addresses(main, files["Addresses per vSwitch"])
    plot_pending(main, files["Pending pods"])
    plot_api_calls(main, files["API calls"])
    plot_latency_cdf(all_runs, files["Network-ready latency CDF"])
    return files


__all__ = ["format_duration", "write_plots"]
